"""REST resource of devices (SPEC sections 6 and 9): CUSTOM1-3, write-only keys, CSV import."""

from __future__ import annotations

import json

import django_filters
from django.db import connection as db_connection
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import parsers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from devices.models import Device
from devices.services import MIN_AUTH_KEY_LENGTH, NotCsv, device_create, device_update, devices_import_csv
from devices.validation import (
    IDENTITY_FIELDS,
    NO_IDENTIFIER,
    TAKEN,
    URN_FORMAT,
    device_identifiers_check,
    device_identity_refused,
    urn_canonical,
)
from portal.api import TenantScopedViewSet
from portal.secrets import Actor


class DeviceSerializer(serializers.ModelSerializer):
    auth_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"Per-device key (write-only, at least {MIN_AUTH_KEY_LENGTH} characters); empty clears it.",
    )
    auth_key_set = serializers.BooleanField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)

    class Meta:
        model = Device
        fields = [
            "id",
            "serial",
            "imei",
            "iccid",
            "dev_eui",
            "urn",
            "name",
            "custom1",
            "custom2",
            "custom3",
            "tags",
            "auth_key",
            "auth_key_set",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["last_seen_at", "created_at", "updated_at"]
        extra_kwargs = {"urn": {"help_text": "urn:dev:<TYPE>:<ID>: — made from an identifier when left empty."}}

    def validate_auth_key(self, value: str) -> str:
        if value and len(value) < MIN_AUTH_KEY_LENGTH:
            raise serializers.ValidationError(f"Must be at least {MIN_AUTH_KEY_LENGTH} characters.")
        return value

    def validate_urn(self, value: str) -> str:
        if not value:
            return value
        canonical = urn_canonical(value)
        if canonical is None:
            raise serializers.ValidationError(URN_FORMAT)
        return canonical

    def validate(self, attrs: dict) -> dict:
        checked = device_identifiers_check(
            tenant=self.context["request"].tenant_context.tenant,
            values={name: attrs.get(name) for name in IDENTITY_FIELDS},
            device=self.instance,
        )
        attrs.update(checked.normalised)
        if checked.problems:
            raise serializers.ValidationError(
                {
                    name: [f"Another device of this tenant has this {name}."]
                    if problem == TAKEN
                    else [problem[0].upper() + problem[1:] + "."]
                    for name, problem in checked.problems.items()
                }
            )
        # An update keeps the fields it does not give.
        after = {name: attrs.get(name, getattr(self.instance, name, "")) for name in IDENTITY_FIELDS}
        # DRF calls validate() only when every field passed its own checks; the identifier rules' are answered above.
        if device_identity_refused(values=after, device=self.instance, malformed=()):
            raise serializers.ValidationError(NO_IDENTIFIER)
        return attrs


class DeviceFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(method="filter_tag", help_text="Devices carrying this tag.")

    class Meta:
        model = Device
        fields = ["serial", "imei", "iccid", "dev_eui", "tag"]

    def filter_tag(self, queryset, name, value):
        if db_connection.vendor == "postgresql":
            return queryset.filter(tags__contains=[value])
        return queryset.filter(tags__icontains=json.dumps(value))  # SQLite has no JSON containment


class CsvParser(parsers.BaseParser):
    """A CSV upload sent as the request body (`Content-Type: text/csv`): handed over as bytes."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


class DeviceViewSet(TenantScopedViewSet):
    """The tenant's devices: identifiers, CUSTOM1-3, tags and a write-only key; bulk changes by CSV import."""

    queryset = Device.objects.all()
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    secret_fields = ("auth_key",)

    def perform_create(self, serializer):
        secrets = self._pop_secrets(serializer)
        serializer.instance = device_create(tenant=self.tenant, **serializer.validated_data)
        self._save_secrets(serializer.instance, secrets)

    def perform_update(self, serializer):
        secrets = self._pop_secrets(serializer)
        device_update(device=serializer.instance, **serializer.validated_data)
        self._save_secrets(serializer.instance, secrets)

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer("DeviceImportUpload", {"file": serializers.FileField()}),
            "text/csv": {"type": "string", "format": "binary"},
        },
        parameters=[OpenApiParameter("dry_run", bool, description="Report what would happen; change nothing.")],
        responses={
            200: inline_serializer(
                "DeviceImportReport",
                {
                    "dry_run": serializers.BooleanField(),
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                    "refused": serializers.IntegerField(),
                    "rows": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[parsers.MultiPartParser, CsvParser],
    )
    def import_csv(self, request):
        """Create or update devices from CSV; each row is reported created, updated, unchanged or refused, and why.

        Columns (first row): serial, imei, iccid, dev_eui, name, custom1, custom2, custom3,
        tags (separated by |), auth_key. Empty cells leave a field as it is.
        """
        upload = request.data.get("file") if hasattr(request.data, "get") else None
        data = upload.read() if upload is not None else request.data
        if not isinstance(data, bytes):
            return Response({"file": ["Upload a CSV file as 'file' (multipart) or as a text/csv body."]}, status=400)
        dry_run = request.query_params.get("dry_run", "").lower() in {"1", "true", "yes"}
        try:
            report = devices_import_csv(
                tenant=self.tenant, data=data, actor=Actor.from_request(request), dry_run=dry_run
            )
        except NotCsv as exc:
            return Response({"file": [f"Not imported, nothing changed: {exc}."]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict())
