from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profd.pipeline.device import (
    GIB,
    IOS_CPU_FREQUENCIES,
    DeviceClass,
    class_from_tag,
    classify_device,
    ios_core_frequencies,
)

# Facts of sentry's fixtures/profiles/valid_android_profile.json (POCO F2 Pro).
POCO_F2_PRO_FREQUENCIES = [1804, 1804, 1804, 1804, 2419, 2419, 2419, 2841]
POCO_F2_PRO_MEMORY = 8014073856


# --- spec §5.2 examples -------------------------------------------------------------------


def test_pixel_6_pro_with_hardware_facts_is_high() -> None:
    assert classify_device("Pixel 6 Pro", "android", False, [8000] * 8, 8 * GIB) is DeviceClass.HIGH


def test_android_without_frequencies_or_memory_is_unclassified() -> None:
    assert classify_device("Pixel 6 Pro", "android", False, None, None) is DeviceClass.UNCLASSIFIED
    assert classify_device("Pixel 6 Pro", "android", False) is DeviceClass.UNCLASSIFIED


def test_unknown_os_is_unclassified() -> None:
    assert classify_device("SentryPhone", "SentryOS", False, [8000] * 8, 8 * GIB) is DeviceClass.UNCLASSIFIED


def test_ios_simulator_is_unclassified() -> None:
    assert classify_device("iPhone14,3", "iOS", True) is DeviceClass.UNCLASSIFIED


def test_iphone_13_pro_max_is_high() -> None:
    assert classify_device("iPhone14,3", "iOS", False) is DeviceClass.HIGH


def test_poco_f2_pro_fixture_is_high() -> None:
    assert max(POCO_F2_PRO_FREQUENCIES) == 2841
    assert (
        classify_device("POCO F2 Pro", "android", False, POCO_F2_PRO_FREQUENCIES, POCO_F2_PRO_MEMORY)
        is DeviceClass.HIGH
    )


def test_memory_as_numeric_string() -> None:
    got = classify_device("POCO F2 Pro", "android", False, POCO_F2_PRO_FREQUENCIES, str(POCO_F2_PRO_MEMORY))
    assert got is DeviceClass.HIGH
    assert classify_device("x", "android", False, [3000] * 8, " 2147483648 ") is DeviceClass.LOW


# --- Android boundaries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequencies", "memory", "expected"),
    [
        ([3000] * 7, 8 * GIB, DeviceClass.LOW),  # fewer than 8 cores
        ([3000] * 8, 4 * GIB - 1, DeviceClass.LOW),  # under 4 GiB
        ([3000] * 8, 4 * GIB, DeviceClass.HIGH),
        ([2499] * 8, 4 * GIB, DeviceClass.MEDIUM),
        ([1000] * 7 + [2499], 8 * GIB, DeviceClass.MEDIUM),
        ([1000] * 7 + [2500], 8 * GIB, DeviceClass.HIGH),
        ([2000] * 12, 16 * GIB, DeviceClass.MEDIUM),
    ],
)
def test_android_boundaries(frequencies: list[int], memory: int, expected: DeviceClass) -> None:
    assert classify_device("any", "android", False, frequencies, memory) is expected


def test_android_emulator_is_unclassified() -> None:
    assert classify_device("sdk_gphone64", "android", True, [8000] * 8, 8 * GIB) is DeviceClass.UNCLASSIFIED


@pytest.mark.parametrize(
    ("frequencies", "memory"),
    [([], 8 * GIB), ([3000] * 8, 0), ([3000] * 8, ""), ([3000] * 8, "lots"), ([3000] * 8, -1)],
)
def test_android_missing_measurements_are_unclassified(frequencies: list[int], memory: Any) -> None:
    assert classify_device("any", "android", False, frequencies, memory) is DeviceClass.UNCLASSIFIED


def test_android_os_name_is_matched_exactly() -> None:
    assert classify_device("any", "Android", False, [3000] * 8, 8 * GIB) is DeviceClass.UNCLASSIFIED


# --- Apple --------------------------------------------------------------------------------


@pytest.mark.parametrize("os_name", ["iPhone OS", "iOS", "iPadOS", "watchOS", "tvOS"])
def test_every_apple_os_name_is_recognised(os_name: str) -> None:
    assert classify_device("iPhone14,3", os_name, False) is DeviceClass.HIGH
    assert classify_device("iPhone14,3", os_name, True) is DeviceClass.UNCLASSIFIED


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("iPhone1,1", DeviceClass.LOW),
        ("iPhone8,4", DeviceClass.LOW),  # A9, 1850 MHz
        ("iPhone9,1", DeviceClass.MEDIUM),  # A10, 2340 MHz
        ("iPhone11,8", DeviceClass.MEDIUM),  # A12, 2490 MHz
        ("iPhone12,1", DeviceClass.MEDIUM),  # A13, 2650 MHz
        ("iPhone13,2", DeviceClass.HIGH),  # A14, 3100 MHz
        ("iPhone17,1", DeviceClass.HIGH),
        ("iPad6,11", DeviceClass.LOW),
        ("iPad13,4", DeviceClass.HIGH),  # M1
        ("iPad14,1", DeviceClass.MEDIUM),  # down-clocked A15
        ("AppleTV5,3", DeviceClass.LOW),
        ("AppleTV6,2", DeviceClass.MEDIUM),
        ("Watch6,1", DeviceClass.LOW),
        ("iPod9,1", DeviceClass.LOW),
    ],
)
def test_apple_models(model: str, expected: DeviceClass) -> None:
    assert classify_device(model, "iOS", False) is expected


@pytest.mark.parametrize(
    ("model", "fallback"),
    [
        ("iPhone99,1", (3230,) * 2 + (1800,) * 4),
        ("iPad99,1", (3200,) * 4 + (2060,) * 4),
        ("AppleTV99,1", (2490,) * 2 + (1587,) * 4),
        ("Watch99,1", (1800, 1800)),
    ],
)
def test_unknown_models_fall_back_by_family(model: str, fallback: tuple[int, ...]) -> None:
    assert model not in IOS_CPU_FREQUENCIES
    assert ios_core_frequencies(model) == fallback


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("iPhone99,1", DeviceClass.HIGH),
        ("iPad99,1", DeviceClass.HIGH),
        ("AppleTV99,1", DeviceClass.MEDIUM),
        ("Watch99,1", DeviceClass.LOW),
        # No family to assume anything about: no clocks, counted as 0 MHz.
        ("iPod99,1", DeviceClass.LOW),
        ("arm64", DeviceClass.LOW),
        ("", DeviceClass.LOW),
        (None, DeviceClass.LOW),
    ],
)
def test_unknown_models_classify_like_their_fallback(model: str | None, expected: DeviceClass) -> None:
    assert classify_device(model, "iOS", False) is expected


def test_simulator_models_need_the_emulator_flag() -> None:
    for model in ("i386", "x86_64", "arm64"):
        assert classify_device(model, "iOS", True) is DeviceClass.UNCLASSIFIED


def test_ios_ignores_android_measurements() -> None:
    assert classify_device("iPhone1,1", "iOS", False, [8000] * 8, 8 * GIB) is DeviceClass.LOW


# --- the table itself ---------------------------------------------------------------------

_MODEL_ID = re.compile(r"^(iPhone|iPad|iPod|AppleTV|Watch)\d+,\d+$")


def test_table_entries_are_well_formed() -> None:
    assert len(IOS_CPU_FREQUENCIES) > 200
    for model, frequencies in IOS_CPU_FREQUENCIES.items():
        assert _MODEL_ID.match(model), model
        assert frequencies, model
        assert all(isinstance(mhz, int) and 300 <= mhz <= 5000 for mhz in frequencies), model
        # Fastest cores first, so a row reads like a chip description.
        assert list(frequencies) == sorted(frequencies, reverse=True), model


def test_table_covers_every_iphone_generation() -> None:
    generations = {
        int(m[len("iPhone") :].split(",")[0]) for m in IOS_CPU_FREQUENCIES if m.startswith("iPhone")
    }
    assert generations == set(range(1, 18))


@pytest.mark.parametrize(
    ("model", "frequencies"),
    [
        ("iPhone14,3", (3230,) * 2 + (2020,) * 4),  # A15
        ("iPhone11,2", (2490,) * 2 + (1590,) * 4),  # A12
        ("iPad13,4", (3200,) * 4 + (2060,) * 4),  # M1
        ("AppleTV6,2", (2380,) * 3 + (1300,) * 3),  # A10X
        ("Watch1,1", (520,)),
    ],
)
def test_table_values(model: str, frequencies: tuple[int, ...]) -> None:
    assert IOS_CPU_FREQUENCIES[model] == frequencies


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        IOS_CPU_FREQUENCIES["iPhone1,1"] = (1,)  # type: ignore[index]


# --- the device.class tag -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", DeviceClass.LOW),
        ("2", DeviceClass.MEDIUM),
        ("3", DeviceClass.HIGH),
        ("4", DeviceClass.UNKNOWN),
        ("0", DeviceClass.UNKNOWN),
        ("low", DeviceClass.UNKNOWN),
        (" 1", DeviceClass.UNKNOWN),
        ("", None),
        (None, None),
    ],
)
def test_class_from_tag(value: str | None, expected: DeviceClass | None) -> None:
    assert class_from_tag(value) is expected


def test_class_from_tag_odd_types() -> None:
    odd: Any = 1
    assert class_from_tag(odd) is DeviceClass.UNKNOWN
    odd = 0
    assert class_from_tag(odd) is None
    odd = []
    assert class_from_tag(odd) is None


def test_values_are_the_medium_vocabulary() -> None:
    assert [c.value for c in DeviceClass] == ["unclassified", "low", "medium", "high", "unknown"]
    assert str(DeviceClass.MEDIUM) == "medium"


# --- odd input never raises ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("is_emulator", "expected"),
    [
        (None, DeviceClass.HIGH),
        ("true", DeviceClass.UNCLASSIFIED),
        ("false", DeviceClass.HIGH),
        (1, DeviceClass.UNCLASSIFIED),
        (0, DeviceClass.HIGH),
        ("maybe", DeviceClass.HIGH),
    ],
)
def test_emulator_flag_parsing(is_emulator: Any, expected: DeviceClass) -> None:
    assert classify_device("iPhone14,3", "iOS", is_emulator) is expected
    assert classify_device("x", "android", is_emulator, [3000] * 8, 8 * GIB) is expected


@pytest.mark.parametrize(
    "frequencies",
    ["30003000", b"\x01" * 8, {"a": 1}, [3000] * 7 + ["fast"], [3000] * 7 + [None], 3000, object()],
)
def test_unreadable_frequencies_count_as_missing(frequencies: Any) -> None:
    assert classify_device("x", "android", False, frequencies, 8 * GIB) is DeviceClass.UNCLASSIFIED


def test_numeric_strings_and_floats_in_frequencies_are_read() -> None:
    frequencies: Any = ["3000"] * 4 + [3000.0] * 4
    assert classify_device("x", "android", False, frequencies, 8 * GIB) is DeviceClass.HIGH
    assert classify_device("x", "android", False, tuple([2841] * 8), 8.0 * GIB) is DeviceClass.HIGH  # type: ignore[arg-type]


@pytest.mark.parametrize("memory", [True, float("nan"), float("inf"), "1e400", [8 * GIB], "8 GiB"])
def test_unreadable_memory_counts_as_missing(memory: Any) -> None:
    assert classify_device("x", "android", False, [3000] * 8, memory) is DeviceClass.UNCLASSIFIED


_odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(),
    st.lists(st.one_of(st.integers(), st.floats(), st.text(), st.none())),
    st.dictionaries(st.text(), st.integers()),
)


@given(
    model=_odd,
    os_name=st.one_of(_odd, st.sampled_from(["android", "iOS", "watchOS"])),
    is_emulator=_odd,
    frequencies=_odd,
    memory=_odd,
)
def test_classify_device_never_raises(
    model: Any, os_name: Any, is_emulator: Any, frequencies: Any, memory: Any
) -> None:
    assert isinstance(classify_device(model, os_name, is_emulator, frequencies, memory), DeviceClass)


@given(value=_odd)
def test_class_from_tag_never_raises(value: Any) -> None:
    assert class_from_tag(value) in {None, *DeviceClass}
