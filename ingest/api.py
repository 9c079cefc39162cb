"""REST resources of ingest: connections, messages and readings (SPEC section 9)."""

from __future__ import annotations

import datetime as dt

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from devices.models import Reading
from ingest.kinds import KINDS
from ingest.models import Connection, Message
from ingest.services import NotReprocessable, connection_create, message_reprocess
from ingest.validation import connection_errors, device_key_header_errors
from portal.api import RotateSecretMixin, TenantScopedViewSet
from portal.secrets import Actor, whsec_form

# --- connections ---------------------------------------------------------------------------


class ConnectionSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        help_text=(
            "Shared secret (write-only): at least 32 characters with upper- and lower-case letters, a digit and "
            "one of #?!@$%^&(){}:.,/+*; — a standard-webhooks connection also takes a whsec_ key. "
            "Generated (and answered once) when a connection that needs one is created without it."
        ),
    )
    secret_set = serializers.BooleanField(read_only=True)
    ingest_url = serializers.CharField(read_only=True, help_text="The URL senders POST to (add /<serial> if wanted).")

    class Meta:
        model = Connection
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "enabled",
            "ingest_url",
            "secret",
            "secret_set",
            "secret_rotated_at",
            "username",
            "auth_mode",
            "device_key_header",
            "plug_uuid",
            "auto_create_devices",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["secret_rotated_at", "created_at", "updated_at"]

    def _current(self, attrs: dict, name: str):
        if name in attrs:
            return attrs[name]
        if self.instance is not None:
            return getattr(self.instance, name)
        return Connection._meta.get_field(name).get_default()

    def validate_device_key_header(self, value: str) -> str:
        errors = device_key_header_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict) -> dict:
        errors = connection_errors(
            kind=self._current(attrs, "kind"),
            auth_mode=self._current(attrs, "auth_mode"),
            username=self._current(attrs, "username"),
            plug_uuid=self._current(attrs, "plug_uuid"),
            secret=attrs.get("secret"),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class NewConnectionSerializer(ConnectionSerializer):
    """A created connection, with its new secret when generated and its whsec key when Standard Webhooks."""

    # Only in the 201 answer, and only when there is one: not read_only, which the schema
    # would mark required (an answer without them then breaks the published schema).
    generated_secret = serializers.CharField(required=False, help_text="The generated secret; shown this once only.")
    whsec = serializers.CharField(required=False, help_text="Standard Webhooks key; shown once.")

    class Meta(ConnectionSerializer.Meta):
        fields = [*ConnectionSerializer.Meta.fields, "generated_secret", "whsec"]


class ConnectionViewSet(RotateSecretMixin, TenantScopedViewSet):
    """Inbound webhook connections. Secrets are write-only; `rotate-secret` keeps the old one for an hour."""

    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer
    secret_fields = ("secret",)
    filterset_fields = ["kind", "enabled"]
    default_grace_seconds = 3600

    @property
    def rotation_allows_whsec(self) -> bool:
        return KINDS[self.get_object().kind].accepts_whsec

    def rotation_answer_whsec(self, obj) -> bool:
        return KINDS[obj.kind].accepts_whsec

    @extend_schema(responses={201: NewConnectionSerializer})
    def create(self, request, *args, **kwargs):
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        fields = dict(given.validated_data)
        secret = fields.pop("secret", None)
        new = connection_create(tenant=self.tenant, actor=Actor.from_request(request), secret=secret, **fields)
        answer = dict(ConnectionSerializer(new.connection, context=self.get_serializer_context()).data)
        if new.generated_secret is not None:
            answer["generated_secret"] = new.generated_secret
        if new.whsec is not None:
            answer["whsec"] = new.whsec
        return Response(answer, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        response = super().update(request, *args, **kwargs)
        connection = self.get_object()
        secret = request.data.get("secret") if hasattr(request.data, "get") else None
        if secret and KINDS[connection.kind].accepts_whsec:
            # A new key of a Standard Webhooks connection is answered once in the form its libraries take.
            response.data["whsec"] = whsec_form(secret)
        return response


# --- messages ------------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    readings = serializers.IntegerField(source="readings_count", read_only=True, help_text="How many readings.")
    body = serializers.SerializerMethodField(help_text="The raw body as received, as text.")

    class Meta:
        model = Message
        fields = [
            "id",
            "connection",
            "device",
            "received_at",
            "status",
            "error",
            "readings",
            "body",
            "skipped",
            "content_type",
            "webhook_id",
            "serial_in_url",
            "source_ip",
            "request_id",
        ]
        read_only_fields = fields

    def get_body(self, message: Message) -> str:
        return bytes(message.body).decode("utf-8", errors="replace")


class MessageFilter(django_filters.FilterSet):
    # Plain id filters: they never look the id up, so another tenant's id just finds nothing.
    connection = django_filters.UUIDFilter(field_name="connection_id")
    device = django_filters.NumberFilter(field_name="device_id")
    status = django_filters.ChoiceFilter(choices=Message.Status.choices)

    class Meta:
        model = Message
        fields = ["connection", "device", "status"]


class MessageViewSet(TenantScopedViewSet):
    """Raw inbound messages (read-only); an invalid one can be re-processed."""

    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    # POST only for reprocess; messages are made by webhooks, never by the API.
    http_method_names = ["get", "post", "head", "options"]

    @extend_schema(exclude=True)
    def create(self, request, *args, **kwargs):
        raise exceptions.MethodNotAllowed("POST", detail="Messages arrive through webhooks; they are not created here.")

    @extend_schema(request=None, responses={200: MessageSerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Normalise an invalid message again, after its cause (device, connection settings) is fixed."""
        try:
            message = message_reprocess(message=self.get_object())
        except NotReprocessable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(MessageSerializer(message, context=self.get_serializer_context()).data)


# --- readings ------------------------------------------------------------------------------


class ReadingSerializer(serializers.ModelSerializer):
    value = serializers.JSONField(
        read_only=True, help_text="A JSON number, string or boolean; for kind `data` the base64url text as sent."
    )

    class Meta:
        model = Reading
        fields = ["id", "device", "message", "name", "unit", "kind", "value", "sum", "time"]
        read_only_fields = fields


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time compared in UTC: PostgreSQL refuses offsets past ±15:59 that ISO allows."""

    def filter(self, qs, value):
        return super().filter(qs, value.astimezone(dt.UTC) if value is not None else value)


class ReadingFilter(django_filters.FilterSet):
    device = django_filters.NumberFilter(field_name="device_id")
    message = django_filters.UUIDFilter(field_name="message_id")
    name = django_filters.CharFilter(field_name="name")
    since = UtcDateTimeFilter(field_name="time", lookup_expr="gte", help_text="Readings at or after.")
    until = UtcDateTimeFilter(field_name="time", lookup_expr="lt", help_text="Readings before.")

    class Meta:
        model = Reading
        fields = ["device", "message", "name", "since", "until"]


class ReadingCursorPagination(CursorPagination):
    ordering = ("-time", "-id")
    page_size = 100


class ReadingViewSet(TenantScopedViewSet):
    """Readings normalised from messages (read-only), newest first."""

    queryset = Reading.objects.all()
    serializer_class = ReadingSerializer
    filterset_class = ReadingFilter
    http_method_names = ["get", "head", "options"]
    # Readings grow to millions of rows: a cursor needs no COUNT(*) and stays fast on
    # deep pages (page numbers cost ~0.5 s a page at 5 M rows in bench/db_scale.py).
    pagination_class = ReadingCursorPagination
