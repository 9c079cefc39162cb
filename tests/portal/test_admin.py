"""The Django admin of members: as in the portal, staff cannot leave a tenant without an admin.

Not by changing or deleting a membership (one or selected), not by editing the
memberships inline on the tenant's page, not by deleting or deactivating the user. An
admin whose user is inactive cannot log in, so does not count as the one left.
"""

from __future__ import annotations

import pytest

from portal.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db

REFUSED = "Tenant acme would be left without an admin. A tenant needs at least one admin"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def membership(tenant: Tenant, user: User) -> Membership:
    return Membership.objects.get(tenant=tenant, user=user)


def roles(tenant: Tenant) -> dict[str, str]:
    return dict(Membership.objects.filter(tenant=tenant).values_list("user__email", "role"))


def change_form(m: Membership, **changes) -> dict:
    return {"user": m.user_id, "tenant": m.tenant_id, "role": m.role, "_save": "Save", **changes}


def user_form(user: User, **changes) -> dict:
    """The user's change page as posted: its fields as stored, with `changes`; a false flag is left out."""
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "_save": "Save",
        **changes,
    }
    return {name: "on" if value is True else value for name, value in data.items() if value is not False}


def tenant_form(tenant: Tenant, changes: dict[str, str]) -> dict:
    """The tenant's change page as posted, its memberships inline: a new role by e-mail, or "delete"."""
    rows = list(Membership.objects.filter(tenant=tenant).select_related("user"))
    data = {
        "slug": tenant.slug,
        "name": tenant.name,
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(len(rows)),
        "settings-TOTAL_FORMS": "0",
        "settings-INITIAL_FORMS": "0",
        "_save": "Save",
    }
    for i, row in enumerate(rows):
        change = changes.get(row.user.email, row.role)
        data |= {
            f"memberships-{i}-id": row.pk,
            f"memberships-{i}-tenant": tenant.pk,
            f"memberships-{i}-user": row.user_id,
            f"memberships-{i}-role": row.role if change == "delete" else change,
        }
        if change == "delete":
            data[f"memberships-{i}-DELETE"] = "on"
    return data


def test_the_last_admin_can_be_neither_demoted_nor_moved_to_another_tenant(staff_client, acme, globex, alice, bob):
    m = membership(acme, alice)
    url = f"/admin/portal/membership/{m.pk}/change/"

    demoted = staff_client.post(url, change_form(m, role=Role.VIEWER))
    moved = staff_client.post(url, change_form(m, tenant=globex.pk))

    assert demoted.status_code == moved.status_code == 200
    assert REFUSED in demoted.content.decode() and REFUSED in moved.content.decode()
    assert roles(acme) == {"alice@acme.test": Role.ADMIN, "bob@acme.test": Role.EDITOR}


def test_an_admin_with_another_admin_beside_them_can_be_demoted(staff_client, acme, alice, bob):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)
    m = membership(acme, alice)

    response = staff_client.post(f"/admin/portal/membership/{m.pk}/change/", change_form(m, role=Role.VIEWER))

    assert response.status_code == 302
    assert roles(acme) == {"alice@acme.test": Role.VIEWER, "bob@acme.test": Role.ADMIN}


def test_the_last_admin_cannot_be_deleted_and_staff_are_told_why(staff_client, acme, alice):
    m = membership(acme, alice)
    url = f"/admin/portal/membership/{m.pk}/delete/"

    asked = staff_client.get(url)
    confirmed = staff_client.post(url, {"post": "yes"}, follow=True)

    assert asked.status_code == 302 and asked["Location"] == f"/admin/portal/membership/{m.pk}/change/"
    assert REFUSED in confirmed.content.decode()
    assert Membership.objects.filter(pk=m.pk).exists()


def test_deleting_the_selected_memberships_is_refused_when_it_would_take_every_admin(
    staff_client, acme, alice, bob, vera
):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)
    admins = [membership(acme, alice).pk, membership(acme, bob).pk]
    action = {"action": "delete_selected", "_selected_action": admins}

    asked = staff_client.post("/admin/portal/membership/", action, follow=True)
    confirmed = staff_client.post("/admin/portal/membership/", {**action, "post": "yes"}, follow=True)

    for response in (asked, confirmed):
        assert "Nothing was deleted. " + REFUSED in response.content.decode()
    assert len(roles(acme)) == 3


def test_selected_memberships_that_leave_an_admin_are_deleted(staff_client, acme, alice, bob, vera):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)
    selected = [membership(acme, alice).pk, membership(acme, vera).pk]

    response = staff_client.post(
        "/admin/portal/membership/", {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert response.status_code == 302
    assert roles(acme) == {"bob@acme.test": Role.ADMIN}


@pytest.mark.parametrize("change", [Role.EDITOR, "delete"])
def test_the_last_admin_can_be_neither_demoted_nor_deleted_inline_on_the_tenant_page(
    staff_client, acme, alice, bob, change
):
    response = staff_client.post(f"/admin/portal/tenant/{acme.pk}/change/", tenant_form(acme, {alice.email: change}))

    assert response.status_code == 200 and REFUSED in response.content.decode()
    assert roles(acme) == {"alice@acme.test": Role.ADMIN, "bob@acme.test": Role.EDITOR}


def test_inline_an_admin_steps_down_once_another_is_admin(staff_client, acme, alice, bob):
    url = f"/admin/portal/tenant/{acme.pk}/change/"

    # Both in one save is refused: promotions count once saved, as in the portal.
    at_once = staff_client.post(url, tenant_form(acme, {bob.email: Role.ADMIN, alice.email: "delete"}))
    promoted = staff_client.post(url, tenant_form(acme, {bob.email: Role.ADMIN}))
    stepped_down = staff_client.post(url, tenant_form(acme, {alice.email: "delete"}))

    assert at_once.status_code == 200 and REFUSED in at_once.content.decode()
    assert promoted.status_code == stepped_down.status_code == 302
    assert roles(acme) == {"bob@acme.test": Role.ADMIN}


def test_a_user_who_is_a_tenants_last_admin_cannot_be_deleted(staff_client, acme, alice, bob):
    one = staff_client.post(f"/admin/portal/user/{alice.pk}/delete/", {"post": "yes"}, follow=True)
    selected = staff_client.post(
        "/admin/portal/user/",
        {"action": "delete_selected", "_selected_action": [alice.pk, bob.pk], "post": "yes"},
        follow=True,
    )

    assert REFUSED in one.content.decode()
    assert "Nothing was deleted. " + REFUSED in selected.content.decode()
    assert User.objects.filter(pk__in=[alice.pk, bob.pk]).count() == 2


def test_a_user_who_is_no_last_admin_is_deleted(staff_client, acme, alice, bob):
    response = staff_client.post(f"/admin/portal/user/{bob.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=bob.pk).exists()


def test_a_user_who_is_a_tenants_last_admin_cannot_be_deactivated(staff_client, acme, alice, bob):
    response = staff_client.post(f"/admin/portal/user/{alice.pk}/change/", user_form(alice, is_active=False))

    assert response.status_code == 200 and REFUSED in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


def test_a_user_with_another_active_admin_beside_them_is_deactivated(staff_client, acme, alice, bob):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)

    response = staff_client.post(f"/admin/portal/user/{alice.pk}/change/", user_form(alice, is_active=False))

    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active


def test_an_inactive_admin_does_not_count_as_the_admin_left_when_deactivating_another(staff_client, acme, alice, bob):
    Membership.objects.filter(tenant=acme, user=bob).update(role=Role.ADMIN)
    User.objects.filter(pk=bob.pk).update(is_active=False)

    response = staff_client.post(f"/admin/portal/user/{alice.pk}/change/", user_form(alice, is_active=False))

    assert response.status_code == 200 and REFUSED in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


def test_a_last_admin_already_inactive_can_still_be_edited(staff_client, acme, alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    alice.refresh_from_db()

    response = staff_client.post(f"/admin/portal/user/{alice.pk}/change/", user_form(alice, first_name="Alice"))

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.first_name, alice.is_active) == ("Alice", False)


def test_the_only_bulk_change_of_users_is_the_guarded_delete(staff_client, alice):
    # A bulk action or list-editable column that deactivated users would have to check the last admins too.
    changelist = staff_client.get("/admin/portal/user/")

    offered = [name for name, _label in changelist.context["action_form"].fields["action"].choices if name]
    assert offered == ["delete_selected"]
    assert changelist.context["cl"].formset is None
