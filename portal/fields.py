"""An encrypted model field for write-only secrets.

The column holds a Fernet token. Loading a row never decrypts: the attribute is a
`SealedSecret`, whose repr and str never show the value, so a secret cannot leak into
a template, a log line or a traceback by accident. Code that needs the value calls
`.reveal()`, which decrypts with the configured keys or raises `SecretUnavailable` —
the ciphertext is never handed out as if it were the secret.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models


class SecretUnavailable(Exception):
    """A stored secret that none of FIELD_ENCRYPTION_KEYS decrypts."""


@lru_cache(maxsize=1)
def keyring() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from exc


@lru_cache(maxsize=1024)
def _decrypted(token: str) -> str:
    """The plaintext of a token, kept per process: a token never decrypts to anything else,
    and every webhook request reveals its connection's secret (Fernet's HMAC check and
    AES run cost about 0.1 ms each time). Cleared with the keys."""
    return keyring().decrypt(token.encode()).decode()


def _reset_keyring(*, setting: str, **kwargs) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        keyring.cache_clear()
        _decrypted.cache_clear()


setting_changed.connect(_reset_keyring)


def encrypt(value: str) -> str:
    return keyring().encrypt(value.encode()).decode()


class SealedSecret:
    """A secret as stored: its value is only available through `reveal()`."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def reveal(self) -> str:
        try:
            return _decrypted(self.token)
        except InvalidToken:
            raise SecretUnavailable(
                "the stored secret cannot be decrypted with any key in "
                "FIELD_ENCRYPTION_KEYS; set it again or restore the key"
            ) from None

    def rotated_token(self) -> str:
        """The same secret encrypted with the first (newest) key."""
        try:
            return keyring().rotate(self.token.encode()).decode()
        except InvalidToken:
            raise SecretUnavailable("the stored secret cannot be decrypted with any key") from None

    def __repr__(self) -> str:
        return "<SealedSecret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedSecret) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class EncryptedSecretField(models.TextField):
    """Stores a str encrypted; reads back a SealedSecret (or None when unset)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        return SealedSecret(value) if value else None

    def to_python(self, value):
        if value is None or value == "" or isinstance(value, SealedSecret):
            return value or None
        return str(value)

    def pre_save(self, model_instance, add):
        # Seal a plain value as it is saved, so the instance never keeps it around.
        value = getattr(model_instance, self.attname)
        if isinstance(value, str) and value:
            value = SealedSecret(encrypt(value))
            setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value):
        if value is None or value == "":
            return ""
        if isinstance(value, SealedSecret):
            return value.token
        return encrypt(str(value))

    def value_to_string(self, obj) -> str:
        # Serialisation (dumpdata) keeps the ciphertext, never the plain value.
        value = self.value_from_object(obj)
        return value.token if isinstance(value, SealedSecret) else ""
