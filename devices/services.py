"""Device writes: creation and lookup on arrival, updates (CUSTOM1-3 among them) and CSV import."""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import Q

from devices.identity import DeviceIdentity, default_urn, identifier_error, normalise_identifier
from devices.models import IDENTIFIER_FIELDS, Device
from ingest.sql import fetch_instances, select_columns
from portal.models import Tenant
from portal.secrets import Actor, secret_set

# Fields a device's writers may set; auth_key goes through portal.secrets, never here.
EDITABLE_FIELDS = (*IDENTIFIER_FIELDS, "urn", "name", "custom1", "custom2", "custom3", "tags")


class DeviceConflict(Exception):
    """A new device's identifiers already belong to another device of the tenant."""


def _clean(fields: dict) -> dict:
    cleaned = {name: value for name, value in fields.items() if name in EDITABLE_FIELDS}
    for name in IDENTIFIER_FIELDS:
        if cleaned.get(name):
            cleaned[name] = normalise_identifier(name, cleaned[name])
    return cleaned


def device_create(*, tenant: Tenant | None = None, tenant_id: int | None = None, **fields) -> Device:
    """A new device; without a `urn` it is named by the first of dev_eui, imei, serial, iccid."""
    cleaned = _clean(fields)
    if not cleaned.get("urn"):
        cleaned["urn"] = default_urn(cleaned)
    owner = {"tenant": tenant} if tenant is not None else {"tenant_id": tenant_id}
    return Device.objects.create(**owner, **cleaned, last_seen_at=fields.get("last_seen_at"))


def device_update(*, device: Device, **changes) -> Device:
    """Change a device's identifiers, name, CUSTOM1-3 or tags; a device left without a urn gets one."""
    cleaned = _clean(changes)
    for name, value in cleaned.items():
        setattr(device, name, value)
    update_fields = list(cleaned)
    if not device.urn:
        device.urn = default_urn({name: getattr(device, name) for name in IDENTIFIER_FIELDS})
        update_fields.append("urn")
    if update_fields:
        device.save(update_fields=[*sorted(set(update_fields)), "updated_at"])
    return device


LOOKUP_FIELDS = frozenset({*IDENTIFIER_FIELDS, "urn"})


@functools.cache
def device_seen_sql(fields: tuple[str, ...], returning: str, *, only_if: str = "") -> str:
    """UPDATE of the tenant's device the lookup `fields` name (tried in order), its last_seen_at
    moved on to `seen_at` (never back), RETURNING `returning`; with `only_if`, a condition
    of the caller's statement, nothing is updated unless it holds.

    Named parameters: `tenant`, `seen_at` and `lookup_<n>` for the n-th field's value.
    Ingest runs it on its own (`device_seen`) or inside the statement that stores a message.
    """
    unknown = set(fields) - LOOKUP_FIELDS
    if unknown:
        raise ValueError(f"devices are not looked up by {', '.join(sorted(unknown))}")
    quote = db_connection.ops.quote_name
    table = quote(Device._meta.db_table)
    conditions = " OR ".join(f"{quote(name)} = %(lookup_{n})s" for n, name in enumerate(fields))
    preference = " ".join(f"WHEN {quote(name)} = %(lookup_{n})s THEN {n}" for n, name in enumerate(fields))
    # Only quoted names from the model and a fixed field set are formatted in; values are parameters.
    return (
        f"UPDATE {table} SET last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < %(seen_at)s"  # noqa: S608
        f" THEN %(seen_at)s ELSE last_seen_at END WHERE id = (SELECT id FROM {table} WHERE tenant_id = %(tenant)s"
        f" AND ({conditions}) ORDER BY CASE {preference} END LIMIT 1){f' AND {only_if}' if only_if else ''}"
        f" RETURNING {returning}"
    )


def device_seen_params(*, tenant_id: int, identity: DeviceIdentity, seen_at: datetime) -> dict:
    params = {"tenant": tenant_id, "seen_at": db_connection.ops.adapt_datetimefield_value(seen_at)}
    params.update({f"lookup_{n}": value for n, (_name, value) in enumerate(identity.lookup)})
    return params


def device_seen(*, tenant_id: int, identity: DeviceIdentity, seen_at: datetime) -> Device | None:
    """The tenant's device an identity names (lookups tried in order), its last_seen_at moved on to
    `seen_at` (never back), in one statement; None when there is none.

    One round trip instead of a SELECT and an UPDATE: this runs for every message.
    """
    sql = device_seen_sql(tuple(name for name, _value in identity.lookup), select_columns(Device))
    found = fetch_instances(Device, sql, device_seen_params(tenant_id=tenant_id, identity=identity, seen_at=seen_at))
    return found[0] if found else None


def device_for_identifiers(
    *, tenant_id: int, identity: DeviceIdentity, auto_create: bool, seen_at: datetime
) -> tuple[Device | None, bool]:
    """(device, created): the tenant's device an identity names, marked seen at `seen_at`,
    created when unknown and allowed.

    (None, False) when it is unknown and `auto_create` is off. Two messages creating the
    same new device at once both end with the one row; DeviceConflict when the new
    device's identifiers clash with another device's.
    """
    device = device_seen(tenant_id=tenant_id, identity=identity, seen_at=seen_at)
    if device is not None:
        return device, False
    if not auto_create:
        return None, False
    fields = dict(identity.create)
    try:
        with transaction.atomic():
            return device_create(tenant_id=tenant_id, last_seen_at=seen_at, **fields), True
    except IntegrityError:
        # Created meanwhile by a concurrent message, or an identifier is another device's.
        device = device_seen(tenant_id=tenant_id, identity=identity, seen_at=seen_at)
        if device is None:
            raise DeviceConflict(
                f"a new device ({identity.describe()}) would share an identifier with another device"
            ) from None
        return device, False


def devices_mark_seen(*, devices: list[Device], seen_at: datetime) -> None:
    """Move the devices' last_seen_at on to `seen_at` (never back)."""
    if devices:
        Device.objects.filter(
            Q(last_seen_at__lt=seen_at) | Q(last_seen_at__isnull=True), pk__in=[d.pk for d in devices]
        ).update(last_seen_at=seen_at)


# --- CSV import ---------------------------------------------------------------------------

CSV_COLUMNS = (*IDENTIFIER_FIELDS, "name", "custom1", "custom2", "custom3", "tags", "auth_key")
CSV_ALIASES = {"deveui": "dev_eui", "dev-eui": "dev_eui", "serno": "serial"}
CSV_MAX_ROWS = 10_000
TAG_SEPARATOR = "|"
MIN_AUTH_KEY_LENGTH = 16
TEXT_LIMITS = {"name": 200, "custom1": 255, "custom2": 255, "custom3": 255}


class NotCsv(ValueError):
    """The upload is not a CSV file this import understands; nothing was changed."""


@dataclass
class ImportRow:
    line: int
    result: str  # created, updated, unchanged or refused
    device: int | None = None
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)
    dry_run: bool = False

    def count(self, result: str) -> int:
        return sum(1 for row in self.rows if row.result == result)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "refused": self.count("refused"),
            "rows": [
                {"line": row.line, "result": row.result, "device": row.device, "errors": row.errors}
                for row in self.rows
            ],
        }


def _csv_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(columns, [(line, cells)]) of an upload, or NotCsv saying why it is not CSV."""
    if not data.strip():
        raise NotCsv("the file is empty")
    if b"\x00" in data:
        raise NotCsv("the file is binary, not CSV text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotCsv("the file is not UTF-8 text") from None
    first_line = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        rows = []
        for cells in reader:
            if len(rows) >= CSV_MAX_ROWS:
                raise NotCsv(f"the file has more than {CSV_MAX_ROWS} rows; split it")
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise NotCsv(f"the file is not valid CSV ({exc})") from None
    columns = [CSV_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in header]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        raise NotCsv(
            "the first row must name the columns; unknown: "
            + ", ".join(repr(c[:40]) for c in unknown[:5])
            + f" (known: {', '.join(CSV_COLUMNS)})"
        )
    if len(set(columns)) != len(columns):
        raise NotCsv("a column is named twice in the first row")
    if not set(columns) & set(IDENTIFIER_FIELDS):
        raise NotCsv("the first row must name at least one of " + ", ".join(IDENTIFIER_FIELDS))
    return columns, rows


def _row_values(columns: list[str], cells: list[str]) -> tuple[dict, dict[str, str]]:
    """The non-empty cells of a row, checked; (values, errors by column)."""
    if len(cells) != len(columns):
        return {}, {"row": f"has {len(cells)} cells; the first row names {len(columns)} columns"}
    values, errors = {}, {}
    for column, cell in zip(columns, cells, strict=True):
        cell = cell.strip()
        if not cell:
            continue  # an empty cell leaves the field as it is
        if column in IDENTIFIER_FIELDS:
            problem = identifier_error(column, cell)
            if problem:
                errors[column] = problem
                continue
            cell = normalise_identifier(column, cell)
        elif column in TEXT_LIMITS and len(cell) > TEXT_LIMITS[column]:
            errors[column] = f"must be at most {TEXT_LIMITS[column]} characters"
            continue
        elif column == "tags":
            values[column] = [tag.strip() for tag in cell.split(TAG_SEPARATOR) if tag.strip()]
            continue
        elif column == "auth_key" and len(cell) < MIN_AUTH_KEY_LENGTH:
            errors[column] = f"must be at least {MIN_AUTH_KEY_LENGTH} characters"
            continue
        values[column] = cell
    if not errors and not any(values.get(name) for name in IDENTIFIER_FIELDS):
        errors["row"] = "names no device: give at least one of " + ", ".join(IDENTIFIER_FIELDS)
    return values, errors


def _import_row(*, tenant: Tenant, line: int, values: dict, actor: Actor) -> ImportRow:
    identifiers = {name: values[name] for name in IDENTIFIER_FIELDS if values.get(name)}
    condition = Q()
    for name, value in identifiers.items():
        condition |= Q(**{name: value})
    matches = list(Device.objects.filter(condition, tenant=tenant)[:5])
    if len(matches) > 1:
        owners = ", ".join(
            f"{name} {value} is device {d.pk}"
            for d in matches
            for name, value in identifiers.items()
            if getattr(d, name) == value
        )
        return ImportRow(line=line, result="refused", errors={"row": f"identifiers name different devices ({owners})"})
    auth_key = values.pop("auth_key", None)
    try:
        with transaction.atomic():
            if matches:
                device = matches[0]
                changed = {name: value for name, value in values.items() if getattr(device, name) != value}
                if changed:
                    device_update(device=device, **changed)
                result = "updated" if changed or auth_key else "unchanged"
            else:
                device = device_create(tenant=tenant, **values)
                result = "created"
            if auth_key:
                secret_set(obj=device, field="auth_key", value=auth_key, actor=actor)
    except IntegrityError:
        return ImportRow(line=line, result="refused", errors={"row": "an identifier or urn belongs to another device"})
    return ImportRow(line=line, result=result, device=device.pk)


def devices_import_csv(*, tenant: Tenant, data: bytes, actor: Actor, dry_run: bool = False) -> ImportReport:
    """Create or update the tenant's devices from CSV, reporting each row.

    The first row names the columns (serial, imei, iccid, dev_eui, name, custom1,
    custom2, custom3, tags, auth_key). A row is matched to an existing device by any
    identifier it gives and updates it, or creates one. Empty cells leave fields as
    they are. Rows that cannot be applied are refused with the reason and the others
    applied; an upload that is not CSV raises NotCsv and changes nothing. With
    `dry_run` nothing is kept, but the report says what would have happened.
    """
    columns, rows = _csv_rows(data)
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        for line, cells in rows:
            values, errors = _row_values(columns, cells)
            if errors:
                report.rows.append(ImportRow(line=line, result="refused", errors=errors))
                continue
            report.rows.append(_import_row(tenant=tenant, line=line, values=values, actor=actor))
        if dry_run:
            transaction.set_rollback(True)
    return report
