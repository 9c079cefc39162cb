"""Dynamic fields: `[SERIAL]`, `[IMEI]`, … replaced per device in the URL and header values.

In the URL a value is percent-encoded as a URL component (RFC 3986 unreserved
characters kept, every other byte of its UTF-8 form as %XX); in a header value it is
put as is, and refused when it would bring CR, LF or NUL into the header. A field the
URL or a header uses that is empty for the device is an `EmptyDynamicField`: the
delivery fails at once and nothing is sent.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from delivery.snapshot import DeviceData

# Placeholder → DeviceData attribute.
FIELDS: dict[str, str] = {
    "SERIAL": "serial",
    "IMEI": "imei",
    "ICCID": "iccid",
    "DEVEUI": "dev_eui",
    "CUSTOM1": "custom1",
    "CUSTOM2": "custom2",
    "CUSTOM3": "custom3",
    "DEVICE_ID": "id",
}
PLACEHOLDER = re.compile(r"\[(" + "|".join(FIELDS) + r")\]")
# Anything that looks like a placeholder, to tell users about a misspelt one.
PLACEHOLDER_LIKE = re.compile(r"\[([A-Z][A-Z0-9_]*)\]")
FORBIDDEN_IN_HEADER = ("\r", "\n", "\x00")
# What validation and test sends put in place of each field.
SAMPLE_VALUES = {
    "SERIAL": "SAMPLE-SERIAL",
    "IMEI": "353000000000000",
    "ICCID": "8931000000000000000",
    "DEVEUI": "0004A30B001C0000",
    "CUSTOM1": "sample-custom1",
    "CUSTOM2": "sample-custom2",
    "CUSTOM3": "sample-custom3",
    "DEVICE_ID": "1",
}


class DynamicFieldError(Exception):
    """A dynamic field cannot be filled for this device; the delivery fails without a request."""


class EmptyDynamicField(DynamicFieldError):
    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"dynamic field [{name}] used in the {where} is empty for this device")
        self.field = name


class UnsafeDynamicField(DynamicFieldError):
    def __init__(self, name: str, header: str) -> None:
        super().__init__(f"dynamic field [{name}] would put a line break into header {header}")
        self.field = name


def unknown_placeholders(text: str) -> list[str]:
    """Bracketed upper-case names that are not dynamic fields (likely misspelt)."""
    return [m for m in PLACEHOLDER_LIKE.findall(text) if m not in FIELDS]


def field_value(device: DeviceData | None, name: str) -> str:
    if device is None:
        return ""
    value = getattr(device, FIELDS[name])
    return "" if value is None else str(value)


def fields_fill_url(template: str, device: DeviceData | None) -> str:
    """The URL with each field's value percent-encoded as a URL component."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        value = field_value(device, name)
        if value == "":
            raise EmptyDynamicField(name, "URL")
        return quote(value.encode(), safe="")

    return PLACEHOLDER.sub(replace, template)


def fields_fill_header(header: str, template: str, device: DeviceData | None) -> str:
    """The header value with each field's value as is; CR/LF/NUL refused."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        value = field_value(device, name)
        if value == "":
            raise EmptyDynamicField(name, f"header {header}")
        if any(c in value for c in FORBIDDEN_IN_HEADER):
            raise UnsafeDynamicField(name, header)
        return value

    return PLACEHOLDER.sub(replace, template)


def fields_fill_sample(template: str, *, url: bool) -> str:
    """The template with sample values, for validation and test sends."""
    return PLACEHOLDER.sub(
        lambda m: quote(SAMPLE_VALUES[m.group(1)], safe="") if url else SAMPLE_VALUES[m.group(1)], template
    )
