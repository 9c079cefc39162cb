"""The secret part of connection and destination pages: set, generate, rotate — shown once.

Every change goes through `portal.secrets` (validated, encrypted, audited). A generated
secret is put into the one answer that made it and nowhere else: not the session, not
a redirect URL, not a log line.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from portal.secrets import (
    Actor,
    RotationResult,
    secret_rotate,
    validate_secret_strength,
)

# Help text, not a password.
SECRET_HELP = (
    "At least 32 characters with an upper-case letter, a lower-case letter, a digit and one of "  # noqa: S105
    "#?!@$%^&(){}:.,/+*; or leave it empty and we generate one for you (shown once)."
)


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value back into the page."""

    def __init__(self, attrs=None):
        attrs = {"autocomplete": "new-password", "spellcheck": "false", **(attrs or {})}
        super().__init__(attrs=attrs, render_value=False)


def secret_field(*, label: str = "Secret", help_text: str = SECRET_HELP) -> forms.CharField:
    return forms.CharField(label=label, required=False, strip=False, widget=SecretInput(), help_text=help_text)


@dataclass(frozen=True)
class ShownOnce:
    """A secret to show in this one answer: the value (when generated) and its whsec form."""

    secret: str | None
    whsec: str | None


class RotateSecretForm(forms.Form):
    secret = secret_field(label="New secret")
    grace_seconds = forms.IntegerField(
        label="Keep the old secret working for (seconds)",
        min_value=0,
        max_value=7 * 24 * 3600,
        help_text="During this time both the old and the new secret are accepted, so the other side can switch over.",
    )

    def __init__(self, *args, allow_whsec: bool = False, default_grace: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.allow_whsec = allow_whsec
        self.fields["grace_seconds"].initial = default_grace
        if allow_whsec:
            self.fields["secret"].help_text += " A Standard Webhooks key (whsec_…) is accepted too."

    def clean_secret(self) -> str:
        value = self.cleaned_data["secret"]
        if value:
            validate_secret_strength(value, allow_whsec=self.allow_whsec)
        return value

    def rotate(self, *, obj, actor: Actor, show_whsec: bool) -> ShownOnce:
        result: RotationResult = secret_rotate(
            obj=obj,
            new_secret=self.cleaned_data["secret"] or None,
            grace_seconds=self.cleaned_data["grace_seconds"],
            actor=actor,
            allow_whsec=self.allow_whsec,
        )
        # A supplied secret is never echoed; its whsec form is, as the spec asks, once.
        return ShownOnce(secret=result.generated_secret, whsec=result.whsec if show_whsec else None)


def clean_new_secret(value: str, *, allow_whsec: bool) -> str:
    if value:
        try:
            validate_secret_strength(value, allow_whsec=allow_whsec)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
    return value
