"""RFC 8428 section 4: each resolution rule on its own, then the RFC's worked examples (section 5.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import InvalidPack, NotJson
from ingest.kinds.base import decode_json
from ingest.senml import RELATIVE_TIME_LIMIT, resolve, senml_parse

NOW = 1_700_000_000.0  # the moment of receipt relative times resolve against


def one(record: dict, **kwargs):
    [resolved] = resolve([record], now=NOW, **kwargs)
    return resolved


def refused(pack, fragment: str) -> None:
    with pytest.raises(InvalidPack) as caught:
        resolve(pack, now=NOW)
    assert fragment in str(caught.value)


# --- names -----------------------------------------------------------------------------


def test_name_is_base_name_followed_by_name():
    assert one({"bn": "urn:dev:ow:10e2073a01080063:", "n": "temp", "v": 1}).name == "urn:dev:ow:10e2073a01080063:temp"


def test_base_name_applies_to_later_records_until_replaced():
    records = resolve([{"bn": "a/", "n": "x", "v": 1}, {"n": "y", "v": 2}, {"bn": "b/", "n": "x", "v": 3}], now=NOW)
    assert [r.name for r in records] == ["a/x", "a/y", "b/x"]


def test_a_base_name_alone_is_the_name():
    assert one({"bn": "urn:dev:ow:10e2073a01080063", "v": 1}).name == "urn:dev:ow:10e2073a01080063"


@pytest.mark.parametrize("name", ["-starts-with-dash", "has space", "ümlaut", "semi;colon", "", ":colon-first", "a\nb"])
def test_an_invalid_name_rejects_the_pack(name):
    refused([{"n": name, "v": 1}], "not a valid SenML name")


@pytest.mark.parametrize("name", ["a", "0", "urn:dev:mac:0024befffe804ff1:temp", "2001:db8::2/temp", "a-b.c_d/e:f"])
def test_names_of_the_allowed_characters_are_valid(name):
    assert one({"n": name, "v": 1}).name == name


# --- time -----------------------------------------------------------------------------


def test_time_is_base_time_plus_time():
    assert one({"n": "x", "bt": 1_320_067_464, "t": 60, "v": 1}).time == 1_320_067_524


def test_missing_time_and_base_time_mean_now():
    assert one({"n": "x", "v": 1}).time == NOW


def test_a_resolved_time_below_2_28_is_relative_to_receipt():
    assert one({"n": "x", "t": -5, "v": 1}).time == NOW - 5
    assert one({"n": "x", "t": RELATIVE_TIME_LIMIT - 1, "v": 1}).time == NOW + RELATIVE_TIME_LIMIT - 1


def test_a_resolved_time_of_2_28_or_more_is_absolute():
    assert one({"n": "x", "t": RELATIVE_TIME_LIMIT, "v": 1}).time == RELATIVE_TIME_LIMIT


def test_relative_is_decided_on_the_sum_of_base_time_and_time():
    # bt alone is absolute, bt + t is still absolute although t is small
    assert one({"n": "x", "bt": RELATIVE_TIME_LIMIT + 10, "t": -20, "v": 1}).time == RELATIVE_TIME_LIMIT - 10 + NOW


def test_base_time_applies_until_replaced():
    records = resolve(
        [{"bt": 2_000_000_000, "n": "a", "v": 1}, {"n": "b", "t": 1, "v": 2}, {"bt": 1_500_000_000, "n": "c", "v": 3}],
        now=NOW,
    )
    assert [r.time for r in records] == [2_000_000_000, 2_000_000_001, 1_500_000_000]


def test_receipt_time_turns_relative_times_into_timestamps():
    received = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    parsed = senml_parse([{"n": "x", "t": -60, "v": 1}], received_at=received)
    assert parsed.readings[0].time == received - timedelta(seconds=60)


def test_a_time_out_of_range_rejects_the_pack():
    with pytest.raises(InvalidPack, match="out of range"):
        senml_parse([{"n": "x", "t": 1e20, "v": 1}], received_at=datetime.now(UTC))


# --- values ------------------------------------------------------------------------------


def test_value_is_value_plus_base_value():
    assert one({"n": "x", "bv": 100, "v": 1.5}).value == 101.5


def test_base_value_applies_until_replaced():
    records = resolve([{"bv": 10, "n": "a", "v": 1}, {"n": "b", "v": 2}, {"bv": 0, "n": "c", "v": 3}], now=NOW)
    assert [r.value for r in records] == [11, 12, 3]


@pytest.mark.parametrize(
    ("label", "value", "kind"), [("vs", "on", "string"), ("vb", False, "boolean"), ("vd", "aGkgCg", "data")]
)
def test_base_value_does_not_touch_string_boolean_or_data_values(label, value, kind):
    record = one({"n": "x", "bv": 5, label: value})
    assert (record.value, record.value_label) == (value, label)
    parsed = senml_parse([{"n": "x", label: value}], received_at=datetime.now(UTC))
    assert parsed.readings[0].kind == kind


def test_a_data_value_must_be_base64url_without_padding():
    refused([{"n": "x", "vd": "aGk="}], "base64url")
    refused([{"n": "x", "vd": "a+b/"}], "base64url")


def test_a_record_has_at_most_one_value():
    refused([{"n": "x", "v": 1, "vs": "one"}], "more than one value")


def test_a_record_needs_a_value_or_a_sum():
    refused([{"n": "x", "u": "Cel"}], "neither a value")


def test_sum_is_sum_plus_base_sum_and_may_stand_alone():
    record = one({"n": "x", "bs": 1000, "s": 5})
    assert (record.sum, record.value, record.value_label) == (1005, None, None)
    assert senml_parse([{"n": "x", "s": 5}], received_at=datetime.now(UTC)).readings[0].kind == "number"


def test_base_sum_applies_only_to_records_with_a_sum():
    records = resolve([{"bs": 10, "n": "a", "s": 1}, {"n": "b", "v": 2}], now=NOW)
    assert [(r.value, r.sum) for r in records] == [(None, 11), (2, None)]


# --- units -------------------------------------------------------------------------------


def test_unit_is_the_record_unit_else_the_base_unit():
    records = resolve([{"bu": "A", "n": "a", "v": 1}, {"n": "b", "u": "V", "v": 2}, {"n": "c", "v": 3}], now=NOW)
    assert [r.unit for r in records] == ["A", "V", "A"]


def test_no_unit_is_the_empty_unit():
    assert one({"n": "x", "v": 1}).unit == ""


# --- version and extensions ----------------------------------------------------------------


def test_an_older_base_version_is_understood():
    assert one({"bver": 5, "n": "x", "v": 1}).version == 5


def test_a_newer_base_version_rejects_the_pack():
    refused([{"bver": 11, "n": "x", "v": 1}], "newer than version 10")


@pytest.mark.parametrize("bver", [0, -1, 2.5])
def test_base_version_must_be_a_positive_integer(bver):
    refused([{"bver": bver, "n": "x", "v": 1}], "positive integer")


def test_a_must_understand_field_rejects_the_pack():
    refused([{"n": "x", "v": 1, "secret_": 1}], "'secret_' must be understood")


def test_an_unknown_field_without_underscore_is_ignored():
    assert one({"n": "x", "v": 1, "colour": "blue"}).value == 1


def test_update_time_is_kept():
    assert one({"n": "x", "v": 1, "ut": 300}).update_time == 300


# --- shape and types ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "fragment"),
    [
        ({"n": "x", "v": 1}, "JSON array"),
        ([], "empty array"),
        (["x"], "record 0 must be a JSON object"),
        ([{"n": "x", "v": "1"}], "'v' must be a number"),
        ([{"n": "x", "v": True}], "'v' must be a number"),
        ([{"n": "x", "vb": 1}], "'vb' must be true or false"),
        ([{"n": 5, "v": 1}], "'n' must be a string"),
        ([{"bt": "now", "n": "x", "v": 1}], "'bt' must be a number"),
        ([{"bn": "only-base"}], "no record with a value or a sum"),
    ],
)
def test_malformed_packs_are_rejected_with_the_reason(pack, fragment):
    refused(pack, fragment)


def test_a_record_of_base_fields_only_carries_them_without_becoming_a_reading():
    # KPN Things begins its packs so, as does RFC 8428's "setting an actuator" example.
    records = resolve(
        [{"bn": "urn:dev:DEVEUI:0123456789ABCDEF:", "bt": 1.58565075e9}, {"n": "temperature", "v": 21.5}], now=NOW
    )
    assert [(r.name, r.time, r.value) for r in records] == [
        ("urn:dev:DEVEUI:0123456789ABCDEF:temperature", 1.58565075e9, 21.5)
    ]


@pytest.mark.parametrize("body", [b'[{"n":"x","v":NaN}]', b'[{"n":"x","v":Infinity}]', b"[", b"\xff\xfe"])
def test_bodies_that_are_not_json_are_refused_before_resolution(body):
    with pytest.raises(NotJson):
        decode_json(body, "application/senml+json")


def test_a_declared_non_json_body_is_unsupported_media():
    with pytest.raises(NotJson) as caught:
        decode_json(b"a=1", "application/x-www-form-urlencoded")
    assert caught.value.status == 415


# --- normalisation into device identities and readings -------------------------------------


def test_a_urn_base_name_identifies_the_device_and_the_rest_names_the_reading():
    parsed = senml_parse(
        [{"bn": "urn:dev:DEVEUI:0123456789abcdef:", "n": "temperature", "u": "Cel", "v": 21.5}],
        received_at=datetime.now(UTC),
    )
    assert parsed.devices[0].lookup == (("dev_eui", "0123456789ABCDEF"),)
    assert ("urn", "urn:dev:DEVEUI:0123456789ABCDEF:") in parsed.devices[0].create
    assert (parsed.readings[0].name, parsed.readings[0].unit, parsed.readings[0].device) == ("temperature", "Cel", 0)


@pytest.mark.parametrize(
    ("urn_type", "field"), [("IMEI", "imei"), ("imei", "imei"), ("ICCID", "iccid"), ("Serial", "serial")]
)
def test_known_urn_types_match_the_device_field_whatever_their_case(urn_type, field):
    parsed = senml_parse([{"bn": f"urn:dev:{urn_type}:12345:", "n": "x", "v": 1}], received_at=datetime.now(UTC))
    assert parsed.devices[0].lookup == ((field, "12345"),)


def test_other_urn_types_match_the_device_urn():
    parsed = senml_parse([{"bn": "urn:dev:DVNUUID:abc-123:", "n": "x", "v": 1}], received_at=datetime.now(UTC))
    assert parsed.devices[0].lookup == (("urn", "urn:dev:DVNUUID:abc-123:"),)


def test_names_without_a_device_urn_belong_to_no_named_device():
    parsed = senml_parse([{"n": "temperature", "v": 1}], received_at=datetime.now(UTC))
    assert parsed.devices == [] and parsed.readings[0].device is None


def test_one_pack_may_name_two_devices():
    parsed = senml_parse(
        [
            {"bn": "urn:dev:IMEI:1:", "n": "a", "v": 1},
            {"bn": "urn:dev:IMEI:2:", "n": "a", "v": 2},
            {"bn": "urn:dev:IMEI:1:", "n": "b", "v": 3},
        ],
        received_at=datetime.now(UTC),
    )
    assert [d.lookup for d in parsed.devices] == [(("imei", "1"),), (("imei", "2"),)]
    assert [r.device for r in parsed.readings] == [0, 1, 0]


# --- RFC 8428 section 5.1: the worked examples ------------------------------------------------

SINGLE_DATAPOINT = '[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]'

MULTIPLE_DATAPOINTS = """[
 {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
 {"n":"current","u":"A","v":1.2}
]"""

MULTIPLE_DATAPOINTS_WITH_TIME = """[
 {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
  "bu":"A","bver":5,
  "n":"voltage","u":"V","v":120.1},
 {"n":"current","t":-5,"v":1.2},
 {"n":"current","t":-4,"v":1.3},
 {"n":"current","t":-3,"v":1.4},
 {"n":"current","t":-2,"v":1.5},
 {"n":"current","t":-1,"v":1.6},
 {"n":"current","v":1.7}
]"""

MULTIPLE_MEASUREMENTS = """[
 {"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,
  "bu":"%RH","v":20},
 {"u":"lon","v":24.30621},
 {"u":"lat","v":60.07965},
 {"t":60,"v":20.3},
 {"u":"lon","t":60,"v":24.30622},
 {"u":"lat","t":60,"v":60.07965},
 {"t":120,"v":20.7},
 {"u":"lon","t":120,"v":24.30623},
 {"u":"lat","t":120,"v":60.07966},
 {"u":"%EL","t":150,"v":98},
 {"t":180,"v":21.2},
 {"u":"lon","t":180,"v":24.30628},
 {"u":"lat","t":180,"v":60.07967}
]"""

RESOLVED_DATA = """[
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067464e+09,"v":20},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067464e+09,"v":24.30621},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067464e+09,"v":60.07965},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067524e+09,"v":20.3},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067524e+09,"v":24.30622},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067524e+09,"v":60.07965},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067584e+09,"v":20.7},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067584e+09,"v":24.30623},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067584e+09,"v":60.07966},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%EL","t":1.320067614e+09,"v":98},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067644e+09,"v":21.2},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067644e+09,"v":24.30628},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067644e+09,"v":60.07967}
]"""

MULTIPLE_DATA_TYPES = """[
 {"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},
 {"n":"label","vs":"Machine Room"},
 {"n":"open","vb":false},
 {"n":"nfc-reader","vd":"aGkgCg"}
]"""

COLLECTION_OF_RESOURCES = """[
 {"bn":"2001:db8::2/","bt":1.320078429e+09,
  "n":"temperature","u":"Cel","v":25.2},
 {"n":"humidity","u":"%RH","v":30},
 {"bn":"2001:db8::1/","n":"temperature","u":"Cel","v":12.3},
 {"n":"humidity","u":"%RH","v":67}
]"""

SETTING_AN_ACTUATOR = """[
 {"bn":"urn:dev:ow:10e2073a01080063:"},
 {"n":"temp","u":"Cel","v":23.1},
 {"n":"heat","u":"/","v":1},
 {"n":"fan","u":"/","v":0}
]"""

SYNCHRONISED_LIGHTS_OFF = """[
 {"bt":1.320078429e+09,"bu":"/","n":"2001:db8::3","v":0.5},
 {"n":"2001:db8::4","v":0.5},
 {"n":"2001:db8::3","t":0.1,"v":0},
 {"n":"2001:db8::4","t":0.1,"v":0}
]"""


def as_resolved_json(records) -> list[dict]:
    """Resolved records in the RFC's resolved JSON form (absent unit left out)."""
    out = []
    for r in records:
        entry = {"n": r.name, "t": r.time}
        if r.unit:
            entry["u"] = r.unit
        if r.value_label:
            entry[r.value_label] = r.value
        if r.sum is not None:
            entry["s"] = r.sum
        out.append(entry)
    return out


def test_rfc_single_datapoint_is_taken_now():
    [record] = resolve(json.loads(SINGLE_DATAPOINT), now=NOW)
    assert (record.name, record.unit, record.value, record.time) == ("urn:dev:ow:10e2073a01080063", "Cel", 23.1, NOW)


def test_rfc_multiple_datapoints_share_the_base_name():
    records = resolve(json.loads(MULTIPLE_DATAPOINTS), now=NOW)
    assert as_resolved_json(records) == [
        {"n": "urn:dev:ow:10e2073a01080063:voltage", "u": "V", "v": 120.1, "t": NOW},
        {"n": "urn:dev:ow:10e2073a01080063:current", "u": "A", "v": 1.2, "t": NOW},
    ]


def test_rfc_multiple_datapoints_with_time_count_back_from_the_base_time():
    records = resolve(json.loads(MULTIPLE_DATAPOINTS_WITH_TIME), now=NOW)
    base = 1.276020076001e09
    assert [r.name for r in records] == ["urn:dev:ow:10e2073a0108006:voltage"] + [
        "urn:dev:ow:10e2073a0108006:current"
    ] * 6
    assert [r.unit for r in records] == ["V"] + ["A"] * 6
    assert [r.value for r in records] == [120.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7]
    assert [r.time - base for r in records] == [0, -5, -4, -3, -2, -1, 0]
    assert {r.version for r in records} == {5}


def test_rfc_multiple_measurements_resolve_to_the_rfc_resolved_data():
    assert as_resolved_json(resolve(json.loads(MULTIPLE_MEASUREMENTS), now=NOW)) == json.loads(RESOLVED_DATA)


def test_rfc_resolved_data_is_its_own_resolution():
    assert as_resolved_json(resolve(json.loads(RESOLVED_DATA), now=NOW)) == json.loads(RESOLVED_DATA)


def test_rfc_multiple_data_types():
    parsed = senml_parse(json.loads(MULTIPLE_DATA_TYPES), received_at=datetime.now(UTC))
    assert [(r.name, r.kind, r.value) for r in parsed.readings] == [
        ("temp", "number", 23.1),
        ("label", "string", "Machine Room"),
        ("open", "boolean", False),
        ("nfc-reader", "data", "aGkgCg"),
    ]
    assert parsed.devices[0].lookup == (("urn", "urn:dev:OW:10e2073a01080063:"),)


def test_rfc_collection_of_resources_keeps_the_base_time_across_a_new_base_name():
    records = resolve(json.loads(COLLECTION_OF_RESOURCES), now=NOW)
    assert as_resolved_json(records) == [
        {"n": "2001:db8::2/temperature", "u": "Cel", "v": 25.2, "t": 1.320078429e09},
        {"n": "2001:db8::2/humidity", "u": "%RH", "v": 30, "t": 1.320078429e09},
        {"n": "2001:db8::1/temperature", "u": "Cel", "v": 12.3, "t": 1.320078429e09},
        {"n": "2001:db8::1/humidity", "u": "%RH", "v": 67, "t": 1.320078429e09},
    ]


def test_rfc_setting_an_actuator():
    records = resolve(json.loads(SETTING_AN_ACTUATOR), now=NOW)
    assert [(r.name, r.unit, r.value) for r in records] == [
        ("urn:dev:ow:10e2073a01080063:temp", "Cel", 23.1),
        ("urn:dev:ow:10e2073a01080063:heat", "/", 1),
        ("urn:dev:ow:10e2073a01080063:fan", "/", 0),
    ]


def test_rfc_synchronised_lights_off_adds_fractions_of_a_second():
    records = resolve(json.loads(SYNCHRONISED_LIGHTS_OFF), now=NOW)
    assert [(r.name, r.unit, r.value, round(r.time - 1.320078429e09, 6)) for r in records] == [
        ("2001:db8::3", "/", 0.5, 0),
        ("2001:db8::4", "/", 0.5, 0),
        ("2001:db8::3", "/", 0, 0.1),
        ("2001:db8::4", "/", 0, 0.1),
    ]
