"""portal.services' member writes: invite, change role, remove, and the last-admin guard."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from portal.models import Membership, Role, User
from portal.services import member_change_role, member_invite, member_remove, members_last_admins

pytestmark = pytest.mark.django_db

BASE_URL = "https://portal.example/"


def test_inviting_a_stranger_makes_a_user_who_must_set_a_password(acme, alice):
    invitation = member_invite(
        tenant=acme, email="New@Acme.test", role=Role.EDITOR, invited_by=alice, base_url=BASE_URL
    )

    assert invitation.new_user and invitation.membership.role == Role.EDITOR
    assert not User.objects.get(email="new@acme.test").has_usable_password()


def test_inviting_a_member_again_is_refused_on_the_email_field(acme, alice, bob):
    with pytest.raises(ValidationError) as refused:
        member_invite(tenant=acme, email="bob@acme.test", role=Role.VIEWER, invited_by=alice, base_url=BASE_URL)
    assert refused.value.message_dict == {"email": ["bob@acme.test is already a member of this tenant."]}


def test_the_last_admin_can_be_neither_demoted_nor_removed(acme, alice, bob):
    membership = Membership.objects.get(tenant=acme, user=alice)

    with pytest.raises(ValidationError):
        member_change_role(membership=membership, role=Role.VIEWER)
    with pytest.raises(ValidationError):
        member_remove(membership=membership)

    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN


def test_an_admin_with_another_admin_beside_them_can_go(acme, alice, bob):
    member_change_role(membership=Membership.objects.get(tenant=acme, user=bob), role=Role.ADMIN)

    member_remove(membership=Membership.objects.get(tenant=acme, user=alice))

    assert list(Membership.objects.filter(tenant=acme).values_list("user__email", "role")) == [
        ("bob@acme.test", Role.ADMIN)
    ]


def test_an_admin_whose_user_is_inactive_does_not_count_as_the_remaining_admin(acme, alice, bob):
    # bob cannot log in, so he could not manage the tenant's members.
    member_change_role(membership=Membership.objects.get(tenant=acme, user=bob), role=Role.ADMIN)
    User.objects.filter(pk=bob.pk).update(is_active=False)

    with pytest.raises(ValidationError):
        member_remove(membership=Membership.objects.get(tenant=acme, user=alice))

    assert Membership.objects.filter(tenant=acme, user=alice, role=Role.ADMIN).exists()


def test_an_admin_whose_user_is_inactive_can_be_removed_even_with_no_active_admin_left(acme, alice, bob):
    # alice, the only admin, cannot log in: removing her takes no admin the tenant could use.
    User.objects.filter(pk=alice.pk).update(is_active=False)
    membership = Membership.objects.get(tenant=acme, user=alice)

    assert members_last_admins([membership]) == []
    member_remove(membership=membership)

    assert not Membership.objects.filter(tenant=acme, user=alice).exists()


def _wait_until_blocked(pid: int) -> None:
    with connection.cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [pid])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the second check never waited for the first's locks")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_admins_deactivated_at_once_cannot_both_go(acme, alice, bob):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)
    second: dict = {}
    started = threading.Event()

    def deactivate_bob() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second["pid"] = cursor.fetchone()[0]
            started.set()
            with transaction.atomic():
                second["last"] = members_last_admins(Membership.objects.filter(user=bob))
        finally:
            started.set()
            connection.close()

    thread = threading.Thread(target=deactivate_bob)
    with transaction.atomic():
        assert members_last_admins(Membership.objects.filter(user=alice)) == []
        thread.start()
        started.wait(10)
        _wait_until_blocked(second["pid"])
        User.objects.filter(pk=alice.pk).update(is_active=False)
    thread.join(10)

    assert [m.user_id for m in second["last"]] == [bob.pk]
