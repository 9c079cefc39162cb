"""Digital Matter OEM JSON mapped to readings (SPEC section 5): GPS, digital, analogue, unknown FTypes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.digital_matter import device_identity, digital_matter_parse
from ingest.errors import InvalidPack

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def by_name(parsed) -> dict:
    return {r.name: r for r in parsed.readings}


def test_gps_fields_become_position_readings_at_the_gps_time():
    readings = by_name(digital_matter_parse(fixture("dm_gps_digital_analogue.json")))
    gps_time = datetime(2024, 3, 5, 10, 14, 58, tzinfo=UTC)
    assert {name: (r.value, r.unit, r.time) for name, r in readings.items() if r.time == gps_time} == {
        "latitude": (-31.9586, "lat", gps_time),
        "longitude": (115.8609, "lon", gps_time),
        "altitude": (35, "m", gps_time),
        "speed": (12, "km/h", gps_time),
        "heading": (274, "deg", gps_time),
        "position_accuracy": (10, "m", gps_time),
    }


def test_gps_without_gps_utc_is_at_the_record_date():
    readings = by_name(digital_matter_parse(fixture("dm_unknown_ftype.json")))
    assert readings["latitude"].time == datetime(2024, 3, 5, 10, 20, 2, tzinfo=UTC)


def test_digital_fields_become_unitless_readings_at_the_record_date():
    readings = by_name(digital_matter_parse(fixture("dm_gps_digital_analogue.json")))
    record_time = datetime(2024, 3, 5, 10, 15, 2, tzinfo=UTC)
    assert {
        n: (readings[n].value, readings[n].unit, readings[n].time)
        for n in ("digital_in", "digital_out", "device_status")
    } == {
        "digital_in": (2, "", record_time),
        "digital_out": (0, "", record_time),
        "device_status": (1, "", record_time),
    }


def test_each_analogue_channel_becomes_its_own_raw_reading():
    readings = by_name(digital_matter_parse(fixture("dm_gps_digital_analogue.json")))
    assert {n: (r.value, r.unit) for n, r in readings.items() if n.startswith("analogue_")} == {
        "analogue_1": (4412, ""),
        "analogue_3": (3295, ""),
        "analogue_4": (18, ""),
        "analogue_5": (4187, ""),
    }


def test_fields_not_mapped_are_ignored_within_a_field():
    # SpdAcc, PDOP and GpsStat have no reading of their own.
    names = {r.name for r in digital_matter_parse(fixture("dm_gps_digital_analogue.json")).readings}
    assert not names & {"SpdAcc", "PDOP", "GpsStat", "spd_acc"}


def test_unknown_ftypes_are_skipped_and_reported_never_fatal():
    parsed = digital_matter_parse(fixture("dm_unknown_ftype.json"))
    assert parsed.skipped == ["record 0 field 1: FType 15 is not mapped", "record 1 field 0: FType 27 is not mapped"]
    assert sorted(r.name for r in parsed.readings) == ["digital_in", "latitude", "longitude"]


def test_the_device_is_named_by_serial_then_imei_and_created_with_all_three():
    identity = device_identity(fixture("dm_gps_digital_analogue.json"))
    assert identity.lookup == (("serial", "117554"), ("imei", "353785720001234"))
    assert identity.create == (("serial", "117554"), ("imei", "353785720001234"), ("iccid", "89314404000123456789"))


def test_the_serial_in_the_url_names_the_device_when_the_payload_has_none():
    payload = {"Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": [{"DIn": 1, "FType": 2}]}]}
    parsed = digital_matter_parse(payload, serial_in_url="SN-9")
    assert parsed.devices[0].lookup == (("serial", "SN-9"),)
    assert parsed.readings[0].device == 0


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([], "JSON object"),
        ({"SerNo": 1}, "'Records' must be an array"),
        ({"SerNo": 1, "Records": []}, "'Records' is empty"),
        ({"Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": []}]}, "names no device"),
        ({"SerNo": 1, "Records": [{"DateUTC": "05/03/2024", "Fields": []}]}, "is not a date"),
        ({"SerNo": 1, "Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": [{"Lat": 1}]}]}, "with an FType"),
        (
            {"SerNo": 1, "Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": [{"FType": 0, "Lat": "north"}]}]},
            "Lat must be a number",
        ),
        (
            {
                "SerNo": 1,
                "Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": [{"FType": 6, "AnalogueData": [1]}]}],
            },
            "AnalogueData must be an object",
        ),
        ({"SerNo": {"x": 1}, "Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": []}]}, "'SerNo' must be"),
    ],
)
def test_malformed_payloads_are_invalid_with_the_reason(payload, fragment):
    with pytest.raises(InvalidPack) as caught:
        digital_matter_parse(payload)
    assert fragment in str(caught.value)
