"""REST resources `destinations/` and `deliveries/` (SPEC section 9). Thin: every rule
is in delivery/validation.py and every action in delivery/services.py."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from delivery import services
from delivery.models import Delivery, DeliveryAttempt, Destination
from delivery.validation import AUTH_FIELDS, auth_errors, authorization_header_errors, header_errors, url_errors
from devices.models import Device
from ingest.models import Connection
from portal.api import RotateSecretMixin, TenantScopedRelatedField, TenantScopedViewSet, secret_strength_validator
from portal.secrets import Actor


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class HeadersField(serializers.Field):
    """The static headers as an object {name: value}, stored as DestinationHeader rows."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("source", "*")
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Static headers {name: value}; values may hold dynamic fields. At most 20.")
        super().__init__(**kwargs)

    def to_representation(self, destination: Destination) -> dict[str, str]:
        return {h.name: h.value for h in destination.header_rows.all()}

    def to_internal_value(self, data) -> dict:
        errors = header_errors(data)
        if errors:
            raise serializers.ValidationError(errors)
        return {"headers": dict(data)}


class DestinationSerializer(serializers.ModelSerializer):
    headers = HeadersField()
    secret = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        validators=[secret_strength_validator()],
        help_text="Write-only shared secret; required when creating.",
    )
    auth_password = serializers.CharField(write_only=True, required=False, trim_whitespace=False, allow_blank=True)
    oauth2_client_secret = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, allow_blank=True
    )
    connections = TenantScopedRelatedField(many=True, required=False, queryset=Connection.objects.all())
    secret_set = serializers.BooleanField(read_only=True)
    auth_password_set = serializers.SerializerMethodField()
    oauth2_client_secret_set = serializers.SerializerMethodField()

    class Meta:
        model = Destination
        fields = [
            "id",
            "name",
            "description",
            "url",
            "method",
            "headers",
            "expected_response_code",
            "secret",
            "signature",
            "auth_type",
            "auth_username",
            "auth_password",
            "oauth2_token_url",
            "oauth2_client_id",
            "oauth2_client_secret",
            "oauth2_scope",
            "payload_format",
            "max_attempts",
            "timeout_seconds",
            "connections",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "secret_set",
            "secret_rotated_at",
            "auth_password_set",
            "oauth2_client_secret_set",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["disabled_reason", "disabled_at", "secret_rotated_at", "created_at", "updated_at"]

    # A new instance holds the field's default "" until it is read back; only a sealed value counts.
    def get_auth_password_set(self, obj) -> bool:
        return bool(obj.auth_password)

    def get_oauth2_client_secret_set(self, obj) -> bool:
        return bool(obj.oauth2_client_secret)

    def validate_url(self, value: str) -> str:
        errors = url_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_oauth2_token_url(self, value: str) -> str:
        errors = url_errors(value, what="token URL") if value else []
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _current(self, attrs: dict, name: str):
        if name in attrs:
            return attrs[name]
        return getattr(self.instance, name, None) if self.instance is not None else None

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, list[str]] = {}
        if self.instance is None and not attrs.get("secret"):
            errors["secret"] = ["A shared secret is required (at least 32 characters); the portal can generate one."]
        auth_type = self._current(attrs, "auth_type")
        errors.update(auth_errors(auth_type=auth_type, values={n: self._current(attrs, n) for n in AUTH_FIELDS}))
        clash = authorization_header_errors(auth_type=auth_type, header_names=attrs.get("headers") or ())
        if clash:
            errors["headers"] = clash
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DestinationTestSerializer(serializers.Serializer):
    wrong_token = serializers.BooleanField(default=True, help_text="Also send a copy with a wrong token.")


class BackfillSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    devices = TenantScopedRelatedField(many=True, required=False, queryset=Device.objects.all())

    def validate(self, attrs: dict) -> dict:
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["until must be after since."]})
        return attrs


class DestinationViewSet(RotateSecretMixin, TenantScopedViewSet):
    """A tenant's destinations; secrets are write-only and audited."""

    queryset = Destination.objects.prefetch_related("header_rows", "connections")
    serializer_class = DestinationSerializer
    secret_fields = ("secret", "auth_password", "oauth2_client_secret")
    filterset_fields = ["enabled", "auth_type", "signature"]
    _whsec: str | None = None

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        if self._whsec:
            # The Standard Webhooks form of the key, once: no later answer holds it.
            response.data["whsec"] = self._whsec
        return response

    def _save_arguments(self, serializer) -> dict:
        """The validated data as delivery.services takes it: plain fields apart from the rest."""
        fields = dict(serializer.validated_data)
        secrets = {name: fields.pop(name) for name in self.secret_fields if name in fields}
        headers = fields.pop("headers", None)
        connections = fields.pop("connections", None)
        return {
            "fields": fields,
            "secrets": secrets,
            "headers": headers,
            "connections": connections,
            "actor": Actor.from_request(self.request),
        }

    def perform_create(self, serializer):
        new = services.destination_create(tenant=self.tenant, **self._save_arguments(serializer))
        serializer.instance = new.destination
        self._whsec = new.whsec

    def perform_update(self, serializer):
        serializer.instance = services.destination_update(
            destination=serializer.instance, **self._save_arguments(serializer)
        )

    @extend_schema(
        request=DestinationTestSerializer,
        responses=inline_serializer(
            "TestSendAnswer",
            {
                "ok": serializers.BooleanField(),
                "problem": serializers.CharField(),
                "sample": serializers.DictField(),
                "wrong_token": serializers.DictField(allow_null=True),
                "wrong_token_rejected": serializers.BooleanField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"], url_path="test")
    def test_send(self, request, pk=None):
        destination = self.get_object()
        given = DestinationTestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        result = services.destination_test_send(
            destination=destination, wrong_token=given.validated_data["wrong_token"]
        )
        return Response(result.as_dict())

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "TlsCheckAnswer",
            {
                "url": serializers.CharField(),
                "accepted": serializers.BooleanField(),
                "reason": serializers.CharField(),
                "host": serializers.CharField(),
                "port": serializers.IntegerField(allow_null=True),
                "address": serializers.CharField(),
                "tls_version": serializers.CharField(),
                "cipher": serializers.CharField(),
                "subject": serializers.CharField(),
                "issuer": serializers.CharField(),
                "not_before": serializers.CharField(),
                "not_after": serializers.CharField(),
                "subject_alt_names": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    @action(detail=True, methods=["post"], url_path="tls-check")
    def tls_check(self, request, pk=None):
        destination = self.get_object()
        return Response(services.destination_tls_check(url=destination.url).as_dict())

    @extend_schema(
        request=BackfillSerializer,
        responses=inline_serializer(
            "BackfillAnswer",
            {
                "messages": serializers.IntegerField(),
                "created": serializers.IntegerField(),
                "existing": serializers.IntegerField(),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def backfill(self, request, pk=None):
        destination = self.get_object()
        given = BackfillSerializer(data=request.data, context=self.get_serializer_context())
        given.is_valid(raise_exception=True)
        try:
            result = services.deliveries_backfill(
                destination=destination,
                since=given.validated_data["since"],
                until=given.validated_data["until"],
                device_ids=[d.pk for d in given.validated_data.get("devices", [])],
            )
        except services.BackfillTooLarge as exc:
            raise serializers.ValidationError({"since": [str(exc)]}) from None
        return Response(
            {"messages": result.messages, "created": result.created, "existing": result.existing},
            status=status.HTTP_202_ACCEPTED,
        )


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "status_code",
            "success",
            "error_class",
            "error",
            "response_body",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "message",
            "destination",
            "status",
            "attempts_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "webhook_id", "attempts"]
        read_only_fields = fields


class DeliveryFilter(filters.FilterSet):
    class Meta:
        model = Delivery
        fields = ["destination", "status", "message"]


class ReplaySerializer(serializers.Serializer):
    destination = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    message = serializers.UUIDField(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": ["Give at least one filter: destination, status or message."]}
            )
        return attrs


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Deliveries of the tenant, with their attempts; replay one or many."""

    queryset = Delivery.objects.all()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def get_queryset(self):
        queryset = super().get_queryset().filter(tenant=self.request.tenant_context.tenant)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("attempts")
        return queryset

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(request=None, responses=DeliveryDetailSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = self.get_object()
        if not services.delivery_replay(delivery=delivery):
            raise serializers.ValidationError({"non_field_errors": ["The delivery is being sent right now."]})
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="v1_deliveries_replay_bulk",
        request=ReplaySerializer,
        responses=inline_serializer("BulkReplayAnswer", {"replayed": serializers.IntegerField()}),
    )
    @action(detail=False, methods=["post"], url_path="replay")
    def replay_bulk(self, request):
        given = ReplaySerializer(data=request.data)
        given.is_valid(raise_exception=True)
        queryset = self.get_queryset().filter(**given.validated_data)
        try:
            count = services.deliveries_replay(queryset=queryset)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)
