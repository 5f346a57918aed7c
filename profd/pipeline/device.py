"""Device classification for profiles (pipeline spec §5.2).

Two sources of a class exist. `classify_device` derives one from the hardware the profile
reports (CPU clocks, core count, memory) with the later hardware rule set; `class_from_tag`
reads the `device.class` transaction tag that newer SDKs compute on the device. Both use the
vocabulary "low" / "medium" / "high", never the older "mid".

Both functions accept whatever a client sent: a value of the wrong type or one that does
not parse is treated as missing, never raised on, because one malformed profile must not
fail normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "IOS_CPU_FREQUENCIES",
    "DeviceClass",
    "class_from_tag",
    "classify_device",
    "ios_core_frequencies",
]


class DeviceClass(StrEnum):
    UNCLASSIFIED = "unclassified"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    UNKNOWN = "unknown"


GIB = 1024**3

_ANDROID_OS_NAMES = frozenset({"android"})
_APPLE_OS_NAMES = frozenset({"iPhone OS", "iOS", "iPadOS", "watchOS", "tvOS"})

# Thresholds in MHz / cores / bytes, as in the spec's later rule set.
_IOS_LOW_BELOW_MHZ = 2000
_IOS_MEDIUM_BELOW_MHZ = 3000
_ANDROID_LOW_BELOW_CORES = 8
_ANDROID_LOW_BELOW_MEMORY = 4 * GIB
_ANDROID_MEDIUM_BELOW_MHZ = 2500


def _cores(*groups: tuple[int, int]) -> tuple[int, ...]:
    """Expand (core count, max MHz) groups into one max clock per core."""
    return tuple(mhz for count, mhz in groups for _ in range(count))


# Per-core maximum clocks (MHz) of each Apple SoC, as configured in the device that uses it.
# A chip appears more than once where Apple clocked it differently per product; the suffix
# after "@" names that product. Efficiency-core clocks never change a class (only the
# fastest core counts) and are the least certain figures here.
_CHIPS: Mapping[str, tuple[int, ...]] = {
    # Single-core era.
    "APL0098": _cores((1, 412)),
    "S5L8720": _cores((1, 533)),
    "S5L8920": _cores((1, 600)),
    "Pentium M": _cores((1, 1000)),
    "A4": _cores((1, 800)),
    "A4@iPad": _cores((1, 1000)),
    # Apple never published the Apple TV (2nd gen) clock; 1 GHz like the iPad's A4 is assumed.
    "A4@AppleTV": _cores((1, 1000)),
    # Apple TV (3rd gen) runs an A5 with one core enabled.
    "A5@AppleTV": _cores((1, 1000)),
    "A5": _cores((2, 800)),
    "A5@iPad": _cores((2, 1000)),
    "A5X": _cores((2, 1000)),
    "A6": _cores((2, 1300)),
    "A6X": _cores((2, 1400)),
    "A7": _cores((2, 1300)),
    "A7@iPadAir": _cores((2, 1400)),
    # Measured nearer 1380 in the iPhone 6; either way it is "low".
    "A8": _cores((2, 1400)),
    "A8@iPad": _cores((2, 1500)),
    "A8@iPod": _cores((2, 1100)),
    "A8X": _cores((3, 1500)),
    "A9": _cores((2, 1850)),
    "A9X@9.7": _cores((2, 2160)),
    "A9X@12.9": _cores((2, 2260)),
    # A10 pairs each fast core with a slow one but runs only one of each pair, so the
    # system sees two cores.
    "A10": _cores((2, 2340)),
    "A10@iPod": _cores((2, 1630)),
    "A10X": _cores((3, 2380), (3, 1300)),
    "A11": _cores((2, 2390), (4, 1420)),
    "A12": _cores((2, 2490), (4, 1590)),
    "A12X": _cores((4, 2490), (4, 1590)),
    "A12Z": _cores((4, 2490), (4, 1590)),
    # Uncertain: efficiency cores reported between 1600 and 1800.
    "A13": _cores((2, 2650), (4, 1800)),
    # Uncertain: Apple's figure is 3.1 GHz, some measurements read 2.99 GHz, which would
    # make these devices "medium" rather than "high".
    "A14": _cores((2, 3100), (4, 1820)),
    "A15": _cores((2, 3230), (4, 2020)),
    # The iPad mini (6th gen) A15 is clocked down.
    "A15@iPadMini": _cores((2, 2930), (4, 2020)),
    "A16": _cores((2, 3460), (4, 2020)),
    # Uncertain: the iPad (A16) is a binned part with three efficiency cores; its
    # performance-core clock is assumed equal to the iPhone's.
    "A16@iPad": _cores((2, 3460), (3, 2020)),
    "A17 Pro": _cores((2, 3780), (4, 2110)),
    # Uncertain: efficiency-core clocks of the A18 family are not published.
    "A18": _cores((2, 4040), (4, 2200)),
    "A18 Pro": _cores((2, 4050), (4, 2200)),
    "M1": _cores((4, 3200), (4, 2060)),
    "M2": _cores((4, 3490), (4, 2420)),
    "M3": _cores((4, 4050), (4, 2750)),
    # Base-storage models ship with three performance cores; the class is the same.
    "M4": _cores((4, 4400), (6, 2850)),
    # Watch SoCs: only the S1 clock was ever published. Later ones are assumed to keep the
    # S1's clock (S1P-S5) or the 1.8 GHz of the A13 efficiency cores they derive from
    # (S6 onwards); every watch is "low" either way, which is also what the fallback gives.
    "S1": _cores((1, 520)),
    "S1P": _cores((2, 520)),
    "S2": _cores((2, 520)),
    "S3": _cores((2, 520)),
    "S4": _cores((2, 520)),
    "S5": _cores((2, 520)),
    "S6": _cores((2, 1800)),
    "S7": _cores((2, 1800)),
    "S8": _cores((2, 1800)),
    # Derived from A16/A18 efficiency cores (about 2 GHz); 1.8 GHz is assumed so a watch is
    # not ranked with phones.
    "S9": _cores((2, 1800)),
    "S10": _cores((2, 1800)),
}

# (chip, product, model identifiers). One row per product so each line can be checked
# against a public model list.
_DEVICES: tuple[tuple[str, str, str], ...] = (
    ("APL0098", "iPhone", "iPhone1,1"),
    ("APL0098", "iPhone 3G", "iPhone1,2"),
    ("S5L8920", "iPhone 3GS", "iPhone2,1"),
    ("A4", "iPhone 4", "iPhone3,1 iPhone3,2 iPhone3,3"),
    ("A5", "iPhone 4S", "iPhone4,1"),
    ("A6", "iPhone 5", "iPhone5,1 iPhone5,2"),
    ("A6", "iPhone 5c", "iPhone5,3 iPhone5,4"),
    ("A7", "iPhone 5s", "iPhone6,1 iPhone6,2"),
    ("A8", "iPhone 6 Plus, 6", "iPhone7,1 iPhone7,2"),
    ("A9", "iPhone 6s, 6s Plus, SE (1st gen)", "iPhone8,1 iPhone8,2 iPhone8,4"),
    ("A10", "iPhone 7, 7 Plus", "iPhone9,1 iPhone9,2 iPhone9,3 iPhone9,4"),
    ("A11", "iPhone 8, 8 Plus, X", "iPhone10,1 iPhone10,2 iPhone10,3 iPhone10,4 iPhone10,5 iPhone10,6"),
    ("A12", "iPhone XS, XS Max, XR", "iPhone11,2 iPhone11,4 iPhone11,6 iPhone11,8"),
    ("A13", "iPhone 11, 11 Pro, 11 Pro Max, SE (2nd gen)", "iPhone12,1 iPhone12,3 iPhone12,5 iPhone12,8"),
    ("A14", "iPhone 12 mini, 12, 12 Pro, 12 Pro Max", "iPhone13,1 iPhone13,2 iPhone13,3 iPhone13,4"),
    ("A15", "iPhone 13 Pro, 13 Pro Max, 13 mini, 13", "iPhone14,2 iPhone14,3 iPhone14,4 iPhone14,5"),
    ("A15", "iPhone SE (3rd gen)", "iPhone14,6"),
    ("A15", "iPhone 14, 14 Plus", "iPhone14,7 iPhone14,8"),
    ("A16", "iPhone 14 Pro, 14 Pro Max", "iPhone15,2 iPhone15,3"),
    ("A16", "iPhone 15, 15 Plus", "iPhone15,4 iPhone15,5"),
    ("A17 Pro", "iPhone 15 Pro, 15 Pro Max", "iPhone16,1 iPhone16,2"),
    ("A18 Pro", "iPhone 16 Pro, 16 Pro Max", "iPhone17,1 iPhone17,2"),
    ("A18", "iPhone 16, 16 Plus", "iPhone17,3 iPhone17,4"),
    ("A18", "iPhone 16e", "iPhone17,5"),
    ("APL0098", "iPod touch (1st gen)", "iPod1,1"),
    ("S5L8720", "iPod touch (2nd gen)", "iPod2,1"),
    ("S5L8920", "iPod touch (3rd gen)", "iPod3,1"),
    ("A4", "iPod touch (4th gen)", "iPod4,1"),
    ("A5", "iPod touch (5th gen)", "iPod5,1"),
    ("A8@iPod", "iPod touch (6th gen)", "iPod7,1"),
    ("A10@iPod", "iPod touch (7th gen)", "iPod9,1"),
    ("A4@iPad", "iPad (1st gen)", "iPad1,1 iPad1,2"),
    ("A5@iPad", "iPad 2", "iPad2,1 iPad2,2 iPad2,3 iPad2,4"),
    ("A5X", "iPad (3rd gen)", "iPad3,1 iPad3,2 iPad3,3"),
    ("A6X", "iPad (4th gen)", "iPad3,4 iPad3,5 iPad3,6"),
    ("A9", "iPad (5th gen)", "iPad6,11 iPad6,12"),
    ("A10", "iPad (6th gen)", "iPad7,5 iPad7,6"),
    # Uncertain: listed at 2.33 GHz by some sources.
    ("A10", "iPad (7th gen)", "iPad7,11 iPad7,12"),
    ("A12", "iPad (8th gen)", "iPad11,6 iPad11,7"),
    ("A13", "iPad (9th gen)", "iPad12,1 iPad12,2"),
    ("A14", "iPad (10th gen)", "iPad13,18 iPad13,19"),
    ("A16@iPad", "iPad (A16)", "iPad15,7 iPad15,8"),
    ("A7@iPadAir", "iPad Air (1st gen)", "iPad4,1 iPad4,2 iPad4,3"),
    ("A8X", "iPad Air 2", "iPad5,3 iPad5,4"),
    ("A12", "iPad Air (3rd gen)", "iPad11,3 iPad11,4"),
    ("A14", "iPad Air (4th gen)", "iPad13,1 iPad13,2"),
    ("M1", "iPad Air (5th gen)", "iPad13,16 iPad13,17"),
    ("M2", "iPad Air 11-inch, 13-inch (M2)", "iPad14,8 iPad14,9 iPad14,10 iPad14,11"),
    ("M3", "iPad Air 11-inch, 13-inch (M3)", "iPad15,3 iPad15,4 iPad15,5 iPad15,6"),
    ("A5@iPad", "iPad mini (1st gen)", "iPad2,5 iPad2,6 iPad2,7"),
    ("A7", "iPad mini 2", "iPad4,4 iPad4,5 iPad4,6"),
    ("A7", "iPad mini 3", "iPad4,7 iPad4,8 iPad4,9"),
    ("A8@iPad", "iPad mini 4", "iPad5,1 iPad5,2"),
    ("A12", "iPad mini (5th gen)", "iPad11,1 iPad11,2"),
    ("A15@iPadMini", "iPad mini (6th gen)", "iPad14,1 iPad14,2"),
    # Uncertain: assumed to run at the iPhone 15 Pro's clock.
    ("A17 Pro", "iPad mini (A17 Pro)", "iPad16,1 iPad16,2"),
    ("A9X@9.7", "iPad Pro 9.7-inch", "iPad6,3 iPad6,4"),
    ("A9X@12.9", "iPad Pro 12.9-inch (1st gen)", "iPad6,7 iPad6,8"),
    ("A10X", "iPad Pro 12.9-inch (2nd gen)", "iPad7,1 iPad7,2"),
    ("A10X", "iPad Pro 10.5-inch", "iPad7,3 iPad7,4"),
    ("A12X", "iPad Pro 11-inch (1st gen)", "iPad8,1 iPad8,2 iPad8,3 iPad8,4"),
    ("A12X", "iPad Pro 12.9-inch (3rd gen)", "iPad8,5 iPad8,6 iPad8,7 iPad8,8"),
    ("A12Z", "iPad Pro 11-inch (2nd gen)", "iPad8,9 iPad8,10"),
    ("A12Z", "iPad Pro 12.9-inch (4th gen)", "iPad8,11 iPad8,12"),
    ("M1", "iPad Pro 11-inch (3rd gen)", "iPad13,4 iPad13,5 iPad13,6 iPad13,7"),
    ("M1", "iPad Pro 12.9-inch (5th gen)", "iPad13,8 iPad13,9 iPad13,10 iPad13,11"),
    ("M2", "iPad Pro 11-inch (4th gen)", "iPad14,3 iPad14,4"),
    ("M2", "iPad Pro 12.9-inch (6th gen)", "iPad14,5 iPad14,6"),
    ("M4", "iPad Pro 11-inch, 13-inch (M4)", "iPad16,3 iPad16,4 iPad16,5 iPad16,6"),
    ("Pentium M", "Apple TV (1st gen)", "AppleTV1,1"),
    ("A4@AppleTV", "Apple TV (2nd gen)", "AppleTV2,1"),
    ("A5@AppleTV", "Apple TV (3rd gen)", "AppleTV3,1 AppleTV3,2"),
    ("A8@iPad", "Apple TV HD", "AppleTV5,3"),
    ("A10X", "Apple TV 4K (1st gen)", "AppleTV6,2"),
    ("A12", "Apple TV 4K (2nd gen)", "AppleTV11,1"),
    # Uncertain: whether the Apple TV runs its A15 at the iPhone's clock is not published.
    ("A15", "Apple TV 4K (3rd gen)", "AppleTV14,1"),
    ("S1", "Apple Watch (1st gen)", "Watch1,1 Watch1,2"),
    ("S1P", "Apple Watch Series 1", "Watch2,6 Watch2,7"),
    ("S2", "Apple Watch Series 2", "Watch2,3 Watch2,4"),
    ("S3", "Apple Watch Series 3", "Watch3,1 Watch3,2 Watch3,3 Watch3,4"),
    ("S4", "Apple Watch Series 4", "Watch4,1 Watch4,2 Watch4,3 Watch4,4"),
    ("S5", "Apple Watch Series 5", "Watch5,1 Watch5,2 Watch5,3 Watch5,4"),
    ("S5", "Apple Watch SE (1st gen)", "Watch5,9 Watch5,10 Watch5,11 Watch5,12"),
    ("S6", "Apple Watch Series 6", "Watch6,1 Watch6,2 Watch6,3 Watch6,4"),
    ("S7", "Apple Watch Series 7", "Watch6,6 Watch6,7 Watch6,8 Watch6,9"),
    ("S8", "Apple Watch SE (2nd gen)", "Watch6,10 Watch6,11 Watch6,12 Watch6,13"),
    ("S8", "Apple Watch Series 8", "Watch6,14 Watch6,15 Watch6,16 Watch6,17"),
    ("S8", "Apple Watch Ultra", "Watch6,18"),
    ("S9", "Apple Watch Series 9", "Watch7,1 Watch7,2 Watch7,3 Watch7,4"),
    ("S9", "Apple Watch Ultra 2", "Watch7,5"),
    ("S10", "Apple Watch Series 10", "Watch7,8 Watch7,9 Watch7,10 Watch7,11"),
)

IOS_CPU_FREQUENCIES: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {model: _CHIPS[chip] for chip, _product, models in _DEVICES for model in models.split()}
)

# A model missing from the table is most likely newer than it, so it is assumed to be as
# fast as the family's best known device. These numbers are the spec's (upstream's), kept
# exactly so unknown models classify as upstream does; they are not meant to describe one
# real chip (the iPhone one pairs A15 performance cores with 1800 MHz efficiency cores).
_FAMILY_FALLBACKS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("iPhone", _cores((2, 3230), (4, 1800))),
    ("iPad", _cores((4, 3200), (4, 2060))),
    ("AppleTV", _cores((2, 2490), (4, 1587))),
    ("Watch", _cores((2, 1800))),
)


def ios_core_frequencies(model: str | None) -> tuple[int, ...] | None:
    """Per-core max MHz for an Apple model identifier, or None for an unrecognised device."""
    if not isinstance(model, str):
        return None
    known = IOS_CPU_FREQUENCIES.get(model)
    if known is not None:
        return known
    for prefix, assumed in _FAMILY_FALLBACKS:
        if model.startswith(prefix):
            return assumed
    return None


def classify_device(
    model: str | None,
    os_name: str | None,
    is_emulator: bool | None,
    cpu_frequencies: Sequence[int] | None = None,
    physical_memory_bytes: int | str | None = None,
) -> DeviceClass:
    """Hardware-based class of the device a profile was recorded on."""
    emulated = _as_flag(is_emulator)
    if not isinstance(os_name, str):
        return DeviceClass.UNCLASSIFIED
    if os_name in _APPLE_OS_NAMES:
        # Simulators run on whatever Mac hosts them, which says nothing about users' devices.
        if emulated:
            return DeviceClass.UNCLASSIFIED
        return _classify_apple(ios_core_frequencies(model) or ())
    if os_name in _ANDROID_OS_NAMES:
        if emulated:
            return DeviceClass.UNCLASSIFIED
        return _classify_android(_as_frequencies(cpu_frequencies), _as_count(physical_memory_bytes))
    return DeviceClass.UNCLASSIFIED


def _classify_apple(frequencies: tuple[int, ...]) -> DeviceClass:
    # An unrecognised device counts as 0 MHz: low, as upstream's later rule set does.
    fastest = max(frequencies, default=0)
    if fastest < _IOS_LOW_BELOW_MHZ:
        return DeviceClass.LOW
    if fastest < _IOS_MEDIUM_BELOW_MHZ:
        return DeviceClass.MEDIUM
    return DeviceClass.HIGH


def _classify_android(frequencies: tuple[int, ...] | None, memory: int | None) -> DeviceClass:
    # Android has no model table; without both measurements there is nothing to judge by.
    if not frequencies or not memory:
        return DeviceClass.UNCLASSIFIED
    if len(frequencies) < _ANDROID_LOW_BELOW_CORES or memory < _ANDROID_LOW_BELOW_MEMORY:
        return DeviceClass.LOW
    if max(frequencies) < _ANDROID_MEDIUM_BELOW_MHZ:
        return DeviceClass.MEDIUM
    return DeviceClass.HIGH


_TAG_CLASSES: Mapping[str, DeviceClass] = MappingProxyType(
    {"1": DeviceClass.LOW, "2": DeviceClass.MEDIUM, "3": DeviceClass.HIGH}
)


def class_from_tag(value: str | None) -> DeviceClass | None:
    """Class from the SDK's `device.class` transaction tag; None when there is no tag to use."""
    # The annotation is the contract, but tags come from client JSON and may not be strings.
    raw: object = value
    if not raw:
        return None
    if not isinstance(raw, str):
        return DeviceClass.UNKNOWN
    return _TAG_CLASSES.get(raw, DeviceClass.UNKNOWN)


def _as_flag(value: object) -> bool:
    # Only an explicit yes marks an emulator: an unreadable flag must not hide a real device.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return False


def _as_count(value: object) -> int | None:
    """A non-negative whole number from an int, a finite float or a numeric string."""
    if isinstance(value, bool):
        return None
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.isascii() and text.isdigit() else float(text)
        except ValueError:
            return None
    else:
        return None
    if isinstance(number, float):
        if not math.isfinite(number):
            return None
        number = int(number)
    return number if number >= 0 else None


def _as_frequencies(value: object) -> tuple[int, ...] | None:
    # A string is a Sequence too, but never a list of clocks.
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        return None
    parsed = tuple(_as_count(item) for item in value)
    # One unreadable entry makes the core count untrustworthy, so the list counts as missing
    # rather than as a device with fewer cores.
    if any(mhz is None for mhz in parsed):
        return None
    return tuple(mhz for mhz in parsed if mhz is not None)
