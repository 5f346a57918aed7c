"""profd's call trees and function metrics against vroomrs, Sentry's own implementation.

Every profile here goes through profd end to end (`profd process`: validation, the task,
the store); vroomrs then reads the blob profd stored, normalizes it and extracts function
metrics, and the two answers must agree: fingerprints, names, packages, in_app, thread ids,
self and total times, sample counts, and with stack fingerprints their depth and parents.
Inputs: our examples, profiles the real sentry-sdk produces during the test, and every
upstream fixture that vroomrs accepts.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import vroomrs

from profd.analysis.profile_functions import profile_functions
from profd.formats import Kind
from profd.formats.rows import FunctionMetrics, ProfileMetadata
from profd.services import Services, open_services
from profd.settings import Settings
from tests.clients.python_sdk import capture_envelopes
from tests.conftest import SHARED

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SENTRY = {"min_depth": 1, "filter_system_frames": True, "max_unique_functions": 100}


# How many profiles the deterministic inputs give (the live SDK's come on top), and how many
# functions vroomrs finds in them for each comparison: with ../shared, and without it (only
# our examples).  A loop that compares fewer has skipped something.
SHARED_FIXTURES = (SHARED / "fixtures").exists()
FIXTURE_PROFILES = 18 if SHARED_FIXTURES else 3
FIXTURE_FUNCTIONS = {
    "indexed": 157 if SHARED_FIXTURES else 9,
    "stack fingerprints, system frames filtered": 226 if SHARED_FIXTURES else 9,
    "stack fingerprints, all frames": 371 if SHARED_FIXTURES else 11,
}


class Stored(NamedTuple):
    services: Services
    profiles: list[ProfileMetadata]
    # The ids `profd process` accepted: every one must be stored and compared.
    accepted: set[str]
    # Those of them the examples and ../shared give; the others are the live SDK's.
    from_fixtures: set[str]


def vroomrs_accepts(path: Path) -> bool:
    """Upstream fixtures vroomrs can read as they are or after ingest (profd's or Relay's)."""
    return path.name != "cocoa.json"  # vroom's 2022 format: nothing reads it any more


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    directory = tmp_path_factory.mktemp("parity")
    fixtures = sorted(EXAMPLES.glob("*.json"))
    if SHARED_FIXTURES:
        fixtures += sorted(
            p for p in (SHARED / "fixtures" / "upstream").rglob("*.json") if vroomrs_accepts(p)
        )
        fixtures += sorted((SHARED / "fixtures" / "sdk").glob("envelope-*.bin"))
    inputs = fixtures + capture_envelopes(directory, seconds=3)
    data_dir = directory / "data"
    processed = subprocess.run(
        [sys.executable, "-m", "profd", "process", "--json", "--data-dir", str(data_dir), *map(str, inputs)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    rows = [json.loads(line) for line in processed.stdout.splitlines()]
    accepted = [row for row in rows if row["outcome"] == "accepted"]
    from_fixtures = {row["event_id"] for row in accepted if Path(row["path"]) in fixtures}
    services = open_services(Settings.load(data_dir=data_dir))
    yield Stored(services, _all_profiles(services), {row["event_id"] for row in accepted}, from_fixtures)
    services.close()


def _all_profiles(services: Services) -> list[ProfileMetadata]:
    return services.reads.profiles(limit=10_000)


def vroomrs_profile(document: dict[str, Any], kind: Kind) -> Any:
    text = json.dumps(document)
    if kind.is_chunk:
        profile = vroomrs.profile_chunk_from_json_str_and_version(text, document.get("version") or "")
    else:
        profile = vroomrs.profile_from_json_str(text, document["platform"])
    profile.normalize()
    return profile


def serde_json_f64(value: float) -> float:
    """The double serde_json (vroomrs's parser) reads for the shortest text of `value`.

    serde_json without float_roundtrip converts the decimal significand to a double and
    divides by a power of ten, which can land one ulp (256 ns on a unix timestamp in ns)
    away from the correctly rounded value profd reads.
    """
    text = repr(value)
    if "e" in text or "E" in text:
        return value
    whole, _, fraction = text.partition(".")
    negative = whole.startswith("-")
    significand = int(whole.lstrip("-") + fraction)
    result = float(significand) / 10.0 ** len(fraction)
    return -result if negative else result


def as_vroomrs_reads_it(document: dict[str, Any], kind: Kind) -> dict[str, Any]:
    document = copy.deepcopy(document)
    if kind is Kind.SAMPLE_V2:
        for sample in document["profile"]["samples"]:
            sample["timestamp"] = serde_json_f64(float(sample["timestamp"]))
    return document


def theirs(functions: list[Any]) -> dict[int, tuple[Any, ...]]:
    return {
        (f.get_stack_fingerprint() or f.get_fingerprint()): (
            f.get_fingerprint(),
            f.get_function(),
            f.get_package(),
            f.get_in_app(),
            str(f.get_thread_id()),
            sorted(f.get_self_times_ns()),
            sorted(f.get_total_times_ns()),
            f.get_sample_count(),
            f.get_sum_self_time_ns(),
            f.get_max_duration(),
            f.get_depth(),
            f.get_parent_fingerprint(),
        )
        for f in functions
    }


def ours(functions: list[FunctionMetrics]) -> dict[int, tuple[Any, ...]]:
    return {
        (f.stack_fingerprint or f.fingerprint): (
            f.fingerprint,
            f.function,
            f.package,
            f.in_app,
            f.thread_id,
            sorted(f.self_times_ns),
            sorted(f.total_times_ns),
            f.sample_count,
            f.sum_self_time_ns,
            f.max_duration,
            f.depth,
            f.parent_fingerprint,
        )
        for f in functions
    }


def assert_compared_all(stored: Stored, compared: dict[str, int], comparison: str | None = None) -> None:
    """The loop compared every stored profile (`compared`: id -> functions compared), the
    stored ones are those `profd process` accepted, and the fixtures gave what they give."""
    assert {m.profile_id for m in stored.profiles} == stored.accepted
    assert len(stored.from_fixtures) == FIXTURE_PROFILES
    assert len(stored.accepted) > FIXTURE_PROFILES, "the live SDK's profiles are missing"
    assert compared.keys() == stored.accepted
    if comparison is not None:
        functions = sum(compared[profile_id] for profile_id in stored.from_fixtures)
        assert functions == FIXTURE_FUNCTIONS[comparison], (comparison, functions)
        assert sum(compared.values()) > functions, "no function of the live SDK's profiles was compared"


def assert_same(
    expected: dict[int, tuple[Any, ...]], actual: dict[int, tuple[Any, ...]], capped: bool
) -> None:
    """Equal, except that at the 100-function cap ties are cut in vroomrs's hash-map order."""
    if capped:
        boundary = min(entry[8] for entry in expected.values())
        expected = {k: v for k, v in expected.items() if v[8] > boundary}
        actual = {k: v for k, v in actual.items() if v[8] > boundary}
    assert actual == expected


def test_inputs_cover_every_format(stored: Stored) -> None:
    profiles = stored.profiles
    kinds = {(m.kind, m.platform) for m in profiles}
    assert ("sample_v1", "python") in kinds and ("sample_v2", "python") in kinds
    assert ("sample_v2", "node") in kinds and ("android", "android") in kinds
    if SHARED_FIXTURES:
        assert ("sample_v1", "node") in kinds and ("android_chunk", "android") in kinds
    names = {
        f.function for m in profiles for f in stored.services.reads.functions(m.project_id, m.profile_id)
    }
    assert {"fib", "render", "handle_request"} <= names  # fib: the real SDK profiles of our workload


def test_functions_indexed_at_write_time_match_vroomrs(stored: Stored) -> None:
    services = stored.services
    compared: dict[str, int] = {}
    for metadata in stored.profiles:
        kind = Kind(metadata.kind)
        document = services.profiles.load(metadata)
        expected = theirs(vroomrs_profile(document, kind).extract_functions_metrics(**SENTRY))
        indexed = ours(services.reads.functions(metadata.project_id, metadata.profile_id))
        if kind is Kind.SAMPLE_V2:
            # The index holds times from correctly parsed timestamps; vroomrs's parser can be one
            # ulp off per timestamp, i.e. at most 512 ns per sample boundary of a node.
            assert indexed.keys() == expected.keys(), metadata.profile_id
            for key, entry in indexed.items():
                assert entry[:5] == expected[key][:5] and entry[7] == expected[key][7]
                assert abs(entry[8] - expected[key][8]) <= 512 * entry[7], (metadata.profile_id, entry[1])
            indexed = ours(profile_functions(as_vroomrs_reads_it(document, kind), kind))
        assert_same(expected, indexed, capped=len(expected) == 100)
        compared[metadata.profile_id] = len(expected)
    assert_compared_all(stored, compared, "indexed")


@pytest.mark.parametrize("filter_system_frames", [True, False])
def test_stack_fingerprints_match_vroomrs(stored: Stored, filter_system_frames: bool) -> None:
    services = stored.services
    compared: dict[str, int] = {}
    for metadata in stored.profiles:
        kind = Kind(metadata.kind)
        document = services.profiles.load(metadata)
        options = {
            **SENTRY,
            "filter_system_frames": filter_system_frames,
            "generate_stack_fingerprints": True,
        }
        expected = theirs(vroomrs_profile(document, kind).extract_functions_metrics(**options))
        actual = ours(
            profile_functions(
                as_vroomrs_reads_it(document, kind),
                kind,
                filter_system_frames=filter_system_frames,
                generate_stack_fingerprints=True,
            )
        )
        assert_same(expected, actual, capped=len(expected) == 100)
        compared[metadata.profile_id] = len(expected)
    frames = "system frames filtered" if filter_system_frames else "all frames"
    assert_compared_all(stored, compared, f"stack fingerprints, {frames}")


def test_normalizing_the_stored_profile_again_changes_nothing(stored: Stored) -> None:
    from profd.analysis.normalize import normalize

    compared: dict[str, int] = {}
    for metadata in stored.profiles:
        document = stored.services.profiles.load(metadata)
        again = copy.deepcopy(document)
        normalize(again, Kind(metadata.kind))
        assert again == document, metadata.profile_id
        compared[metadata.profile_id] = 0
    assert_compared_all(stored, compared)


def test_where_vroomrs_is_wrong_profd_rejects_the_input() -> None:
    fixture = SHARED / "fixtures/upstream/getsentry/vroomrs/tests/fixtures/sample/v1/valid_cocoa.json"
    if not fixture.exists():
        pytest.skip("the upstream fixtures live in ../shared")
    # vroomrs's own cocoa fixture is truncated (stacks point past the frames): its normalize()
    # panics, a PanicException that `except Exception` does not catch.  profd refuses the
    # profile at ingest with a reason instead (tests/conformance).
    profile = vroomrs.profile_from_json_str(fixture.read_text(), "cocoa")
    with pytest.raises(BaseException) as panic:
        profile.normalize()
    assert type(panic.value).__name__ == "PanicException"
