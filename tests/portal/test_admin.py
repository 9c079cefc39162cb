"""The Django admin of members: as in the portal, staff cannot leave a tenant without an admin.

Not by changing or deleting a membership (one or selected), not by editing the
memberships inline on the tenant's page, not by deleting the user.
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
