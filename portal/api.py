"""The API's shared parts: the tenant-scoped base viewset, related fields and secret rotation.

Every resource viewset derives from `TenantScopedViewSet`: its queryset is narrowed to
the request's tenant in one place, so a viewset cannot forget the filter, and another
tenant's id answers 404.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from portal.models import ApiKey
from portal.secrets import Actor, secret_rotate, secret_set, validate_secret_strength
from portal.services import api_key_create, api_key_revoke
from portal.tenancy import TenantContext


class TenantScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object of the request's tenant; another tenant's id is 'does not exist'."""

    def get_queryset(self):
        context: TenantContext = self.context["request"].tenant_context
        return super().get_queryset().filter(tenant=context.tenant)


class TenantScopedViewSet(viewsets.ModelViewSet):
    """Base of every tenant-owned resource.

    Subclasses set `queryset` to the unscoped rows; `get_queryset` narrows it to the
    request's tenant. `secret_fields` lists write-only secrets that are saved through
    `portal.secrets` (encrypted and audited) rather than by the serializer.
    """

    secret_fields: tuple[str, ...] = ()
    admin_only = False

    @property
    def tenant(self):
        return self.request.tenant_context.tenant

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.tenant)

    def _pop_secrets(self, serializer) -> dict:
        return {
            name: serializer.validated_data.pop(name)
            for name in self.secret_fields
            if name in serializer.validated_data
        }

    def _save_secrets(self, obj, secrets: dict) -> None:
        actor = Actor.from_request(self.request)
        for name, value in secrets.items():
            secret_set(obj=obj, field=name, value=value, actor=actor)

    def perform_create(self, serializer):
        secrets = self._pop_secrets(serializer)
        obj = serializer.save(tenant=self.tenant)
        self._save_secrets(obj, secrets)

    def perform_update(self, serializer):
        secrets = self._pop_secrets(serializer)
        obj = serializer.save()
        self._save_secrets(obj, secrets)


class RotateSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, help_text="The new secret; generated when omitted."
    )
    grace_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=7 * 24 * 3600, help_text="How long the old secret keeps working."
    )


class RotateSecretMixin:
    """`POST {id}/rotate-secret/`: a generated secret is answered once; a supplied one never."""

    default_grace_seconds = 0
    rotation_allows_whsec = False

    def rotation_answer_whsec(self, obj) -> bool:
        return True

    @extend_schema(
        request=RotateSecretSerializer,
        responses=inline_serializer(
            "RotateSecretAnswer",
            {
                "secret": serializers.CharField(required=False, help_text="Only when generated; shown once."),
                "whsec": serializers.CharField(required=False, help_text="The Standard Webhooks key; shown once."),
                "secret_rotated_at": serializers.DateTimeField(),
                "previous_secret_expires_at": serializers.DateTimeField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        obj = self.get_object()
        given = RotateSecretSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        grace = given.validated_data.get("grace_seconds", self.default_grace_seconds)
        try:
            result = secret_rotate(
                obj=obj,
                new_secret=given.validated_data.get("secret"),
                grace_seconds=grace,
                actor=Actor.from_request(request),
                allow_whsec=self.rotation_allows_whsec,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"secret": exc.messages}) from None
        answer = {
            "secret_rotated_at": obj.secret_rotated_at,
            "previous_secret_expires_at": obj.previous_secret_expires_at,
        }
        if result.generated_secret is not None:
            answer["secret"] = result.generated_secret
        if self.rotation_answer_whsec(obj):
            answer["whsec"] = result.whsec
        return Response(answer, status=status.HTTP_200_OK)


def secret_strength_validator(*, allow_whsec: bool = False):
    """A DRF validator for a write-only secret field."""

    def validate(value: str) -> None:
        try:
            validate_secret_strength(value, allow_whsec=allow_whsec)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    return validate


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "label", "prefix", "role", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The tenant's API keys (admins only). Create answers the key once; delete revokes."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    admin_only = True
    filterset_fields = ["role"]

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.request.tenant_context.tenant)

    @extend_schema(
        responses=inline_serializer(
            "NewApiKey", {"key": serializers.CharField(help_text="Shown once."), "api_key": ApiKeySerializer()}
        )
    )
    def create(self, request):
        given = ApiKeySerializer(data=request.data)
        given.is_valid(raise_exception=True)
        new = api_key_create(
            tenant=request.tenant_context.tenant,
            label=given.validated_data.get("label", ""),
            role=given.validated_data.get("role", "editor"),
            created_by=request.user if getattr(request.user, "pk", None) else None,
        )
        return Response({"key": new.key, "api_key": ApiKeySerializer(new.api_key).data}, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
