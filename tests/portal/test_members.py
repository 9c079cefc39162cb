"""portal.services' member writes: invite, change role, remove, and the last-admin guard."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from portal.models import Membership, Role, User
from portal.services import member_change_role, member_invite, member_remove

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
