"""Delivery writes and actions: creating deliveries, replay, backfill, enabling and
disabling destinations, probing, the sweeper, test send and TLS check.

The engine that sends is in delivery/pump.py (claim, build, record: the Celery task's
side) and delivery/engine.py (the event loop that sends); `deliveries_run` is
re-exported here. Workers are only ever told about work through
delivery/doorbell.py, after the transaction that made the work commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets as random
import socket
import ssl
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from delivery.doorbell import doorbell_ring_now_rollback_unsafe, doorbell_ring_on_commit
from delivery.dynamic_fields import SAMPLE_VALUES, fields_fill_sample
from delivery.engine import Job, Outcome, send_now
from delivery.http import UrlRefused, resolve_checked, tls_context, tls_reason, url_check
from delivery.models import Delivery, Destination, DestinationHeader
from delivery.pump import (
    attempt_timeout,
    deliveries_release_for_destination,
    deliveries_release_stale,
    deliveries_run,
    destination_cache_forget,
    destination_data,
    due_deliveries,
    outcome_error_text,
    outcome_succeeded,
)
from delivery.request import request_build
from delivery.snapshot import DestinationData, DeviceData, MessageData, ReadingData
from portal.secrets import Actor, secret_generate, secret_set, whsec_form

if TYPE_CHECKING:
    from ingest.models import Connection
    from portal.models import Tenant

__all__ = [
    "deliveries_backfill",
    "deliveries_create_for_message",
    "deliveries_replay",
    "deliveries_run",
    "deliveries_sweep",
    "delivery_replay",
    "destination_create",
    "destination_disable",
    "destination_headers_set",
    "destination_probe",
    "destination_set_enabled",
    "destination_test_send",
    "destination_tls_check",
    "destination_update",
    "destinations_probe_due",
]

logger = logging.getLogger(__name__)

BACKFILL_MAX_MESSAGES = 100_000
BACKFILL_CHUNK = 1000


# -- creating and re-opening deliveries ----------------------------------------------------


def _destinations_for_message(message) -> QuerySet:
    return (
        Destination.objects.filter(tenant_id=message.tenant_id)
        .filter(Q(enabled=True) | Q(disabled_at__isnull=False))
        .filter(Q(connections=None) | Q(connections=message.connection_id))
        .distinct()
    )


def deliveries_create_sql(*, condition: str = "TRUE") -> str:
    """INSERT … SELECT of one pending Delivery per destination that takes a message.

    Named parameters: message, tenant, connection, pending, now, and any `condition` names.
    Ingest runs it inside the statement that stores the message (`ingest.storage`); the
    rows it adds are the caller's to announce with `doorbell_ring_on_commit()`.
    """
    quote = db_connection.ops.quote_name
    delivery = quote(Delivery._meta.db_table)
    destination = quote(Destination._meta.db_table)
    links = quote(Destination.connections.through._meta.db_table)
    return f"""
        INSERT INTO {delivery} (id, tenant_id, message_id, destination_id, status, attempts_count,
                                series_attempts, next_attempt_at, last_error, created_at)
        SELECT gen_random_uuid(), d.tenant_id, %(message)s, d.id, %(pending)s, 0, 0, %(now)s, '', %(now)s
        FROM {destination} d
        WHERE ({condition}) AND d.tenant_id = %(tenant)s AND (d.enabled OR d.disabled_at IS NOT NULL)
          AND (NOT EXISTS (SELECT 1 FROM {links} l WHERE l.destination_id = d.id)
               OR EXISTS (SELECT 1 FROM {links} l WHERE l.destination_id = d.id AND l.connection_id = %(connection)s))
        ON CONFLICT (message_id, destination_id) DO NOTHING"""  # noqa: S608  (identifiers come from the models, values are parameters)


def deliveries_create_params(*, message, now: dt.datetime) -> dict[str, Any]:
    """The parameters of `deliveries_create_sql()` for a message (its id, tenant and connection)."""
    return {
        "message": message.pk,
        "tenant": message.tenant_id,
        "connection": message.connection_id,
        "pending": Delivery.Status.PENDING,
        "now": now,
    }


def deliveries_create_for_message(*, message) -> int:
    """One pending Delivery per matching destination, in the caller's transaction; returns how many.

    Called by ingest inside the transaction that stores the message, so a message and
    its deliveries commit together; workers are told after that commit. A destination
    the engine disabled (answering 410, failing for 24 h) still gets its deliveries:
    they wait for it to come back. One a user switched off gets none.
    """
    now = timezone.now()
    if db_connection.vendor == "postgresql":
        # One statement on the hot path of every ingested message: the ORM's SELECT of
        # whole destinations plus bulk_create cost ~1.4 ms CPU a message, this ~0.15 ms.
        with db_connection.cursor() as cursor:
            cursor.execute(deliveries_create_sql(), deliveries_create_params(message=message, now=now))
            created = cursor.rowcount
    else:
        deliveries = [
            Delivery(tenant_id=message.tenant_id, message=message, destination_id=pk, next_attempt_at=now)
            for pk in _destinations_for_message(message).values_list("id", flat=True)
        ]
        created = len(Delivery.objects.bulk_create(deliveries, ignore_conflicts=True))
    if created:
        doorbell_ring_on_commit()
    return created


def _not_held(now: dt.datetime) -> Q:
    # A row a worker holds right now is left alone: it is being sent.
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def deliveries_replay(*, queryset: QuerySet) -> int:
    """Put deliveries back to pending for a new series of attempts (same ids and webhook-ids).

    Earlier attempts stay in their log; `attempts_count` keeps counting. Returns how
    many were re-opened.
    """
    now = timezone.now()
    with transaction.atomic():
        count = queryset.filter(_not_held(now)).update(
            status=Delivery.Status.PENDING,
            series_attempts=0,
            next_attempt_at=now,
            delivered_at=None,
            claimed_until=None,
            claim_token=None,
        )
        if count:
            doorbell_ring_on_commit()
    return count


def delivery_replay(*, delivery: Delivery) -> bool:
    replayed = deliveries_replay(queryset=Delivery.objects.filter(pk=delivery.pk)) == 1
    delivery.refresh_from_db()
    return replayed


@dataclass(frozen=True)
class BackfillResult:
    messages: int
    created: int
    existing: int


class BackfillTooLarge(ValueError):
    pass


def deliveries_backfill(
    *, destination: Destination, since: dt.datetime, until: dt.datetime, device_ids: list[int] | None = None
) -> BackfillResult:
    """Ordinary deliveries to `destination` for the tenant's accepted messages in [since, until).

    Messages it already has a delivery for are left as they are (replay those instead).
    """
    from ingest.models import Message

    messages = Message.objects.filter(
        tenant_id=destination.tenant_id,
        status=Message.Status.ACCEPTED,
        received_at__gte=since,
        received_at__lt=until,
    )
    connection_ids = list(destination.connections.values_list("id", flat=True))
    if connection_ids:
        messages = messages.filter(connection_id__in=connection_ids)
    if device_ids:
        messages = messages.filter(device_id__in=device_ids)
    message_ids = list(messages.order_by("received_at").values_list("id", flat=True)[: BACKFILL_MAX_MESSAGES + 1])
    if len(message_ids) > BACKFILL_MAX_MESSAGES:
        raise BackfillTooLarge(f"more than {BACKFILL_MAX_MESSAGES} messages in that range; choose a shorter one")
    created = existing = 0
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(message_ids), BACKFILL_CHUNK):
            chunk = message_ids[start : start + BACKFILL_CHUNK]
            have = set(
                Delivery.objects.filter(destination=destination, message_id__in=chunk).values_list(
                    "message_id", flat=True
                )
            )
            rows = [
                Delivery(
                    tenant_id=destination.tenant_id,
                    message_id=message_id,
                    destination=destination,
                    next_attempt_at=now,
                )
                for message_id in chunk
                if message_id not in have
            ]
            Delivery.objects.bulk_create(rows, ignore_conflicts=True)
            created += len(rows)
            existing += len(have)
        if created:
            doorbell_ring_on_commit()
    return BackfillResult(messages=len(message_ids), created=created, existing=existing)


# -- destinations ------------------------------------------------------------------------


def destination_headers_set(*, destination: Destination, headers: dict[str, str]) -> None:
    """Replace the destination's static headers with `headers` (validated by the caller)."""
    with transaction.atomic():
        destination.header_rows.all().delete()
        DestinationHeader.objects.bulk_create(
            DestinationHeader(destination=destination, name=name, value=value, position=index)
            for index, (name, value) in enumerate(headers.items())
        )
    destination_cache_forget(destination.id)


def _admins_emails(tenant_id: int) -> list[str]:
    from portal.models import Membership, Role

    return list(
        Membership.objects.filter(tenant_id=tenant_id, role=Role.ADMIN, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )


def destination_disabled_notify(*, destination_id: uuid.UUID) -> None:
    """E-mail the tenant's admins that the engine disabled a destination, and why."""
    destination = Destination.objects.filter(id=destination_id).first()
    if destination is None:
        return
    recipients = _admins_emails(destination.tenant_id)
    if not recipients:
        return
    minutes = int(settings.DELIVERY_PROBE_SECONDS // 60)
    body = (
        f"The destination “{destination.name}” ({destination.id}) was disabled: {destination.disabled_reason}.\n\n"
        f"Its deliveries wait. The portal tries it with a signed test message every {minutes} minutes and "
        "enables it again on the first success, then sends what waited, oldest first. You can also fix it "
        "and enable it yourself.\n"
    )
    send_mail(
        subject=f"Destination “{destination.name}” disabled",
        message=body,
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )


def destination_disable(*, destination_id: uuid.UUID, reason: str, at: dt.datetime | None = None) -> bool:
    """The engine disables a destination (410, 24 h of failures, an unusable secret)."""
    at = at or timezone.now()
    with transaction.atomic():
        changed = Destination.objects.filter(id=destination_id, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=at, last_probe_at=at, updated_at=at
        )
        if changed:
            logger.warning("destination %s disabled: %s", destination_id, reason)
            transaction.on_commit(lambda: destination_disabled_notify(destination_id=destination_id))
    destination_cache_forget(destination_id)
    return bool(changed)


def destination_set_enabled(*, destination: Destination, enabled: bool) -> None:
    """A user enables or disables a destination. Enabling sends what waited, oldest first."""
    with transaction.atomic():
        if enabled:
            Destination.objects.filter(id=destination.id).update(
                enabled=True, disabled_reason="", disabled_at=None, failing_since=None, updated_at=timezone.now()
            )
            if deliveries_release_for_destination(destination_id=destination.id):
                doorbell_ring_on_commit()
        else:
            Destination.objects.filter(id=destination.id, enabled=True).update(
                enabled=False, disabled_reason="disabled by a user", disabled_at=None, updated_at=timezone.now()
            )
    destination_cache_forget(destination.id)
    destination.refresh_from_db()


@dataclass(frozen=True)
class NewDestination:
    """A destination just made: a generated secret and the whsec form of its key exist only here, to show once."""

    destination: Destination
    generated_secret: str | None
    whsec: str


def _destination_links_set(
    *,
    destination: Destination,
    secrets: Mapping[str, str],
    headers: Mapping[str, str] | None,
    connections: Iterable[Connection] | None,
    actor: Actor,
) -> None:
    if connections is not None:
        destination.connections.set(connections)
    for name, value in secrets.items():
        secret_set(obj=destination, field=name, value=value, actor=actor)
    if headers is not None:
        destination_headers_set(destination=destination, headers=dict(headers))


def destination_create(
    *,
    tenant: Tenant,
    fields: Mapping[str, Any],
    secrets: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    connections: Iterable[Connection] | None = None,
    actor: Actor,
) -> NewDestination:
    """A new destination, in one transaction. Everything given is validated by the caller.

    `fields` are its plain model fields; `secrets` the write-only ones to set through
    `secret_set` (audited). Without a shared `secret`, one is generated.
    """
    given = secrets.get("secret")
    value = given or secret_generate()
    with transaction.atomic():
        destination = Destination(tenant=tenant, **fields)
        destination.save()
        _destination_links_set(
            destination=destination,
            secrets={"secret": value, **{k: v for k, v in secrets.items() if k != "secret"}},
            headers=headers,
            connections=connections,
            actor=actor,
        )
    return NewDestination(destination=destination, generated_secret=None if given else value, whsec=whsec_form(value))


def destination_update(
    *,
    destination: Destination,
    fields: Mapping[str, Any],
    secrets: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
    connections: Iterable[Connection] | None = None,
    actor: Actor,
) -> Destination:
    """Change a destination, in one transaction: the fields given, each secret given (an
    empty one clears it), and headers and connections unless None. A change of `enabled`
    goes through destination_set_enabled, so enabling sends what waited."""
    fields = dict(fields)
    enabled = fields.pop("enabled", None)
    with transaction.atomic():
        # From the row: a bound ModelForm has already put the new value on the instance.
        was_enabled = Destination.objects.filter(pk=destination.pk).values_list("enabled", flat=True).get()
        for name, value in fields.items():
            setattr(destination, name, value)
        destination.save(update_fields=[*fields, "updated_at"])
        _destination_links_set(
            destination=destination, secrets=secrets, headers=headers, connections=connections, actor=actor
        )
        if enabled is not None and enabled != was_enabled:
            destination_set_enabled(destination=destination, enabled=enabled)
    return destination


# -- sample messages, test send and probe --------------------------------------------------


def sample_message() -> MessageData:
    now = timezone.now().replace(microsecond=0)
    device = DeviceData(
        id=int(SAMPLE_VALUES["DEVICE_ID"]),
        serial=SAMPLE_VALUES["SERIAL"],
        imei=SAMPLE_VALUES["IMEI"],
        iccid=SAMPLE_VALUES["ICCID"],
        dev_eui=SAMPLE_VALUES["DEVEUI"],
        custom1=SAMPLE_VALUES["CUSTOM1"],
        custom2=SAMPLE_VALUES["CUSTOM2"],
        custom3=SAMPLE_VALUES["CUSTOM3"],
        urn=f"urn:dev:DEVEUI:{SAMPLE_VALUES['DEVEUI']}:",
    )
    readings = (
        ReadingData(name="temperature", unit="Cel", kind="number", value=21.5, sum=None, time=now),
        ReadingData(name="battery", unit="V", kind="number", value=3.6, sum=None, time=now),
    )
    return MessageData(id=uuid.uuid4(), received_at=now, device=device, readings=readings)


@dataclass(frozen=True)
class SendReport:
    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
    response_body: str

    @classmethod
    def from_outcome(cls, outcome: Outcome, expected: int | None) -> SendReport:
        ok = outcome_succeeded(outcome, expected)
        return cls(
            ok=ok,
            status_code=outcome.status_code,
            error="" if ok else outcome_error_text(outcome, expected),
            duration_ms=outcome.duration_ms,
            response_body=outcome.response_body,
        )


@dataclass(frozen=True)
class TestSendResult:
    """What a test send found: the signed sample's fate and whether a wrong token was refused."""

    __test__ = False  # not a pytest class

    sample: SendReport
    wrong_token: SendReport | None
    problem: str = ""

    @property
    def wrong_token_rejected(self) -> bool | None:
        return None if self.wrong_token is None else not self.wrong_token.ok

    def as_dict(self) -> dict:
        return {
            "ok": self.sample.ok,
            "problem": self.problem,
            "sample": asdict(self.sample),
            "wrong_token": asdict(self.wrong_token) if self.wrong_token else None,
            "wrong_token_rejected": self.wrong_token_rejected,
        }


def _sample_job(data: DestinationData, message: MessageData, body: bytes | None = None) -> Job:
    webhook_id = f"msg_test_{uuid.uuid4().hex}"
    request = request_build(destination=data, message=message, webhook_id=webhook_id, body=body)
    return Job(
        delivery_id=uuid.uuid4(),
        claim_token=None,
        destination=data,
        request=request,
        timeout=attempt_timeout(timeout_seconds=data.timeout_seconds, attempt=1),
    )


def _wrong_secret() -> str:
    return "Wrong-" + random.token_urlsafe(24) + "#1a"


def destination_test_send(*, destination: Destination, wrong_token: bool = True) -> TestSendResult:
    """Send a signed sample message now; with `wrong_token`, also a copy with a wrong token.

    Dynamic fields take sample values. The copy is the same body with the token and
    signatures made with a wrong secret (auth unchanged), so a receiver that checks
    tokens must refuse it.
    """
    data = destination_data(destination)
    empty = SendReport(ok=False, status_code=None, error="", duration_ms=0, response_body="")
    if data.problem:
        return TestSendResult(sample=empty, wrong_token=None, problem=data.problem)
    data = _with_sample_fields(data)
    message = sample_message()
    outcome = send_now(_sample_job(data, message))
    sample = SendReport.from_outcome(outcome, data.expected_response_code)
    copy = None
    if wrong_token:
        wrong = _replace(data, secrets=(_wrong_secret(),))
        copy_outcome = send_now(_sample_job(wrong, message))
        copy = SendReport.from_outcome(copy_outcome, data.expected_response_code)
    return TestSendResult(sample=sample, wrong_token=copy)


def _replace(data: DestinationData, **changes) -> DestinationData:
    from dataclasses import replace

    return replace(data, **changes)


def _with_sample_fields(data: DestinationData) -> DestinationData:
    return _replace(
        data,
        url=fields_fill_sample(data.url, url=True),
        headers=tuple((n, fields_fill_sample(v, url=False)) for n, v in data.headers),
    )


def destination_probe(*, destination: Destination) -> bool:
    """Try a disabled destination with a signed sample; enable it on success."""
    result = destination_test_send(destination=destination, wrong_token=False)
    if result.problem or not result.sample.ok:
        logger.info("destination %s still failing: %s", destination.id, result.problem or result.sample.error)
        return False
    logger.info("destination %s answered the probe; enabling it", destination.id)
    destination_set_enabled(destination=destination, enabled=True)
    return True


def destinations_probe_due(*, now: dt.datetime | None = None) -> int:
    """Probe each engine-disabled destination not probed for DELIVERY_PROBE_SECONDS; returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.DELIVERY_PROBE_SECONDS)
    due = Q(enabled=False, disabled_at__isnull=False) & (Q(last_probe_at__isnull=True) | Q(last_probe_at__lte=cutoff))
    probed = 0
    for destination_id in Destination.objects.filter(due).values_list("id", flat=True):
        # The conditional update is the claim: two beats never probe one destination twice.
        if not Destination.objects.filter(due, id=destination_id).update(last_probe_at=now):
            continue
        destination = Destination.objects.get(id=destination_id)
        probed += 1
        try:
            destination_probe(destination=destination)
        except Exception:
            logger.exception("probe of destination %s failed", destination_id)
    return probed


# -- the sweeper --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    released: int
    due: bool


def deliveries_sweep() -> SweepResult:
    """Take back stale claims and ring for due deliveries: a lost broker loses nothing."""
    released = deliveries_release_stale()
    if released:
        logger.warning("sweeper took back %d stale delivery claims", released)
    due = due_deliveries(timezone.now()).exists()
    if due:
        doorbell_ring_now_rollback_unsafe()
    return SweepResult(released=released, due=due)


# -- TLS check ----------------------------------------------------------------------------


@dataclass
class TlsReport:
    """What the destination's server offers, and whether the portal's TLS policy accepts it."""

    url: str
    accepted: bool
    reason: str = ""
    host: str = ""
    port: int | None = None
    address: str = ""
    tls_version: str = ""
    cipher: str = ""
    subject: str = ""
    issuer: str = ""
    not_before: str = ""
    not_after: str = ""
    subject_alt_names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _describe_certificate(report: TlsReport, der: bytes | None) -> None:
    if not der:
        return
    cert = x509.load_der_x509_certificate(der)
    report.subject = cert.subject.rfc4514_string()
    report.issuer = cert.issuer.rfc4514_string()
    report.not_before = cert.not_valid_before_utc.isoformat()
    report.not_after = cert.not_valid_after_utc.isoformat()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        report.subject_alt_names = [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
            str(v) for v in san.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        pass


def _inspection_context() -> ssl.SSLContext:
    # Only to describe a server the policy refused: verifies nothing, sends nothing.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions are what we want to see here
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def destination_tls_check(*, url: str, timeout: float = 10.0) -> TlsReport:
    """Connect (through the URL guard) and report TLS version, cipher, certificate and verdict."""
    url = fields_fill_sample(url, url=True)
    report = TlsReport(url=url, accepted=False)
    try:
        host, port = url_check(url)
        report.host, report.port = host, port
        report.address = resolve_checked(host, port)[0]
    except UrlRefused as exc:
        report.reason = str(exc)
        return report
    try:
        with (
            socket.create_connection((report.address, port), timeout=timeout) as sock,
            tls_context().wrap_socket(sock, server_hostname=host) as tls,
        ):
            report.accepted = True
            report.tls_version = tls.version() or ""
            report.cipher = (tls.cipher() or ("",))[0]
            _describe_certificate(report, tls.getpeercert(binary_form=True))
            return report
    except ssl.SSLError as exc:
        report.reason = tls_reason(exc)
    except OSError as exc:
        report.reason = f"cannot connect: {exc.strerror or exc}"
        return report
    try:
        with (
            socket.create_connection((report.address, port), timeout=timeout) as sock,
            _inspection_context().wrap_socket(sock, server_hostname=host) as tls,
        ):
            report.tls_version = tls.version() or ""
            report.cipher = (tls.cipher() or ("",))[0]
            _describe_certificate(report, tls.getpeercert(binary_form=True))
    except (ssl.SSLError, OSError):
        pass
    return report
