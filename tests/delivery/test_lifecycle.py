"""Around the engine: the sweeper, probing disabled destinations, doorbell rings, admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from delivery import doorbell
from delivery.models import Delivery, Destination
from delivery.services import (
    deliveries_replay,
    deliveries_sweep,
    destinations_probe_due,
)
from portal.secrets import Actor, secret_set
from tests.delivery.conftest import SECRET, run_engine
from tests.support.sink import Answer

pytestmark = pytest.mark.django_db


def test_the_sweeper_takes_back_stale_claims_and_rings(make_destination, make_message, monkeypatch):
    make_destination("https://receiver.example/in")
    make_message()
    Delivery.objects.update(claimed_until=timezone.now() - dt.timedelta(seconds=1), claim_token=None)
    rings = []
    monkeypatch.setattr(doorbell, "_publish", lambda **kw: rings.append(kw))

    result = deliveries_sweep()

    assert result.released == 1 and result.due is True
    assert Delivery.objects.get().claimed_until is None
    assert rings == [{"countdown": None, "coalesce": True}]


def test_the_sweeper_leaves_live_claims_alone(make_destination, make_message, monkeypatch):
    make_destination("https://receiver.example/in")
    make_message()
    Delivery.objects.update(claimed_until=timezone.now() + dt.timedelta(seconds=30))
    monkeypatch.setattr(doorbell, "_publish", lambda **kw: None)

    result = deliveries_sweep()

    assert (result.released, result.due) == (0, False)
    assert Delivery.objects.get().claimed_until is not None


def test_new_deliveries_ring_the_doorbell_only_after_commit(
    make_destination, make_message, monkeypatch, django_capture_on_commit_callbacks
):
    make_destination("https://receiver.example/in")
    rings = []
    monkeypatch.setattr(doorbell, "_publish", lambda **kw: rings.append(kw))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_message()
    assert rings == [] and len(callbacks) == 1
    callbacks[0]()
    assert len(rings) == 1


def test_a_destination_switched_off_by_a_user_gets_no_deliveries(make_destination, make_message):
    destination = make_destination("https://receiver.example/in")
    Destination.objects.filter(pk=destination.pk).update(enabled=False, disabled_reason="disabled by a user")
    make_message()
    assert not Delivery.objects.exists()


def test_probe_enables_a_recovered_destination_and_sends_what_waited_oldest_first(
    https_sink, make_destination, make_message, settings
):
    settings.DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION = 1  # one at a time, so arrival order is send order
    destination = make_destination(https_sink.url("/in"), signature="both")
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Destination.objects.filter(pk=destination.pk).update(
        enabled=False, disabled_at=long_ago, last_probe_at=long_ago, disabled_reason="answered 410 Gone"
    )
    first, second, third = make_message(), make_message(), make_message()
    Delivery.objects.update(next_attempt_at=timezone.now() + dt.timedelta(hours=3))
    run_engine()
    assert https_sink.requests == []  # disabled: nothing is sent

    assert destinations_probe_due() == 1
    run_engine()

    destination.refresh_from_db()
    assert destination.enabled and destination.disabled_reason == ""
    probe, *sent = https_sink.wait_for(4)
    assert probe.header("webhook-id").startswith("msg_test_")
    order = [Delivery.objects.get(message=m).webhook_id for m in (first, second, third)]
    assert [r.header("webhook-id") for r in sent] == order


def test_probe_of_a_still_failing_destination_keeps_it_disabled_and_waits_15_minutes(https_sink, make_destination):
    destination = make_destination(https_sink.url("/in"))
    Destination.objects.filter(pk=destination.pk).update(
        enabled=False, disabled_at=timezone.now(), last_probe_at=timezone.now() - dt.timedelta(minutes=16)
    )
    https_sink.default = Answer(503)

    assert destinations_probe_due() == 1
    assert destinations_probe_due() == 0  # probed just now

    destination.refresh_from_db()
    assert destination.enabled is False


def test_replay_leaves_a_delivery_that_is_being_sent_alone(make_destination, make_message):
    make_destination("https://receiver.example/in")
    make_message()
    Delivery.objects.update(status="failed", claimed_until=timezone.now() + dt.timedelta(seconds=30))
    assert deliveries_replay(queryset=Delivery.objects.all()) == 0


def test_admin_shows_destinations_and_deliveries_but_never_a_secret(
    client, staff, https_sink, make_destination, make_message
):
    destination = make_destination(
        https_sink.url("/in"), headers={"X-A": "1"}, auth_type="basic", auth_username="u", auth_password="Pw-1234!"
    )
    make_message()
    run_engine()
    client.force_login(staff)
    delivery = Delivery.objects.get()
    pages = [
        "/admin/delivery/destination/",
        f"/admin/delivery/destination/{destination.pk}/change/",
        "/admin/delivery/delivery/",
        f"/admin/delivery/delivery/{delivery.pk}/change/",
    ]
    for url in pages:
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert SECRET not in answer.content.decode() and "Pw-1234!" not in answer.content.decode()
    assert "X-A" in client.get(pages[1]).content.decode()


def test_admin_rotate_action_changes_the_secret_without_showing_it(client, staff, make_destination):
    destination = make_destination("https://receiver.example/in")
    client.force_login(staff)
    answer = client.post(
        "/admin/delivery/destination/",
        {"action": "rotate_secret", "_selected_action": [str(destination.pk)]},
        follow=True,
    )
    destination.refresh_from_db()
    new = destination.secret.reveal()
    assert new != SECRET and new not in answer.content.decode()


def test_admin_replay_action_reopens_deliveries(client, staff, make_destination, make_message):
    make_destination("https://receiver.example/in")
    make_message()
    Delivery.objects.update(status="failed", next_attempt_at=None)
    client.force_login(staff)
    client.post(
        "/admin/delivery/delivery/",
        {"action": "replay", "_selected_action": [str(d) for d in Delivery.objects.values_list("pk", flat=True)]},
    )
    assert Delivery.objects.get().status == "pending"


def test_secret_change_through_services_is_audited(make_destination):
    from portal.models import SecretAuditLog

    destination = make_destination("https://receiver.example/in", secret=None)
    secret_set(obj=destination, field="secret", value=SECRET, actor=Actor(label="t"))
    assert SecretAuditLog.objects.filter(object_id=str(destination.pk), field="secret").count() == 1
