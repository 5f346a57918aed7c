"""Write path: profd against vroomrs (Sentry's Rust implementation), same inputs, one process.

(a) vroomrs: parse the processed profile JSON -> normalize -> extract function metrics
    (Sentry's parameters) -> compress (lz4 level 9, its storage format);
(b) profd:   decode -> the analyse stage (normalize, call trees, function metrics, flame
    fold) -> the blob the store writes (zstd level 3).

Inputs are processed profiles, i.e. what Sentry's task hands to vroomrs: SDK payloads run
through profd's ingest and the stages of process_profile_task before analyse.  A 20-second
python transaction profile and a 20-second python chunk are captured from the real
sentry-sdk on first use (cached in bench/.data); the node and android inputs are the
captures and fixtures in ../shared.

    .venv/bin/python -m bench.write_path [--repeat 7] [--seconds 20] [--fresh]   (from the repository root)

Prints per input: profiles/s and MB/s of input JSON for each, and the ratio profd/vroomrs
(> 1 means profd is faster).  The two alternate in --repeat rounds of timed loops of at
least 0.2 s each; times are medians, the ratio is the median of the rounds' ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import vroomrs

from profd.formats import Kind, encode_message
from profd.gc_pause import gc_paused
from profd.ingest.envelope import parse_envelope
from profd.ingest.submit import ProfileItem, envelope_items, file_item, to_message
from profd.pipeline.analyse import analyse_profile
from profd.pipeline.task import STAGES, TaskRun, analyse_call_trees
from profd.services import open_services
from profd.settings import Settings
from profd.store.profiles import encode_blob
from tests.clients.python_sdk import capture_envelopes
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"
FIXTURES = {
    "node v1 transaction (SDK 9)": "fixtures/sdk/envelope-node9-transaction-profile.bin",
    "node v2 chunk (SDK 11)": "fixtures/sdk/envelope-node-profile_chunk.bin",
    "node v1 (vroom fixture)": "fixtures/upstream/getsentry/vroom/test/data/node.json",
    "android legacy (vroomrs fixture)": "fixtures/upstream/getsentry/vroomrs/tests/fixtures/android/profile/valid.json",
    "android chunk (vroomrs fixture)": "fixtures/upstream/getsentry/vroomrs/tests/fixtures/android/chunk/valid.json",
    "android v2 chunk (relay perfetto)": (
        "fixtures/upstream/getsentry/relay/tests/integration/fixtures/profile_chunks_perfetto/profile_chunk.output.json"
    ),
    "android legacy (relay, 10 s trace)": "fixtures/upstream/getsentry/relay/relay-profiling/tests/fixtures/android/legacy/valid.json",
}


def processed(items: list[ProfileItem], scratch: Path) -> list[tuple[dict[str, Any], Kind]]:
    """Each item as process_profile_task's stages before analyse leave it: what Sentry's task
    hands to vroom, which normalizes and analyses it as it inserts."""
    services = open_services(Settings.load(data_dir=scratch))
    organization, project = services.default_project()
    context = services.task_context()
    profiles = []
    for item in items:
        message = to_message(
            item, organization_id=organization.id, project_id=project.id, received=int(time.time())
        )
        task = TaskRun(context=context, payload=encode_message(message), sampled=True)
        for step in STAGES[: STAGES.index(analyse_call_trees)]:
            step(task)  # a stage that fails raises StageFailed
        assert task.kind is not None
        profiles.append((task.profile, task.kind))
    services.close()
    return profiles


def inputs(seconds: float, fresh: bool, scratch: Path) -> dict[str, tuple[dict[str, Any], Kind]]:
    DATA.mkdir(parents=True, exist_ok=True)
    captured = sorted(DATA.glob("envelope-*.bin"))
    if fresh or not captured:
        for old in captured:
            old.unlink()
        print(f"capturing {seconds:.0f} s of the real sentry-sdk (transaction and continuous profiling) ...")
        captured = capture_envelopes(DATA, seconds)
    found: dict[str, tuple[dict[str, Any], Kind]] = {}
    items = [item for path in captured for item in envelope_items(parse_envelope(path.read_bytes()))]
    for profile, kind in processed(items, scratch / "sdk"):
        name = (
            "python v1 transaction (SDK, 20 s)" if kind is Kind.SAMPLE_V1 else "python v2 chunk (SDK, 20 s)"
        )
        if kind is Kind.SAMPLE_V1 or len(profile["profile"]["samples"]) > len(
            found.get(name, ({"profile": {"samples": []}},))[0]["profile"]["samples"]
        ):
            found[name] = (profile, kind)
    for name, relative in FIXTURES.items():
        path = SHARED / relative
        if not path.exists():
            print(f"skipping {name}: {path} is not here")
            continue
        data = path.read_bytes()
        items = envelope_items(parse_envelope(data)) if path.suffix == ".bin" else [file_item(data)]
        [found[name]] = processed(items, scratch / name.replace(" ", "_"))
    return found


def vroomrs_write(text: str, kind: Kind, version: str, platform: str) -> None:
    if kind.is_chunk:
        profile = vroomrs.profile_chunk_from_json_str_and_version(text, version)
    else:
        profile = vroomrs.profile_from_json_str(text, platform)
    profile.normalize()
    profile.extract_functions_metrics(min_depth=1, filter_system_frames=True, max_unique_functions=100)
    profile.compress()


def profd_write(decoder: msgspec.json.Decoder[Any], data: bytes, kind: Kind) -> None:
    # As process_profile_task runs it: the collector waits until the profile is stored.  Nothing
    # is kept past the pause, as the store keeps nothing: a collection with the profile still
    # alive would walk all of it.
    with gc_paused():
        encode_blob(analyse_profile(decoder.decode(data), kind, 90).document)


def calibrated(fn: Any) -> int:
    """How many calls make a timed loop of at least 0.2 s."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start >= 0.2:
            return loops
        loops *= 2


def timed(fn: Any, loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def compare(theirs: Any, ours: Any, repeat: int) -> tuple[float, float, float]:
    """Median seconds per call of each, and the median of per-round ratios.

    The two alternate round by round, so a noisy neighbour slows both alike.
    """
    loops_theirs, loops_ours = calibrated(theirs), calibrated(ours)
    rounds = [(timed(theirs, loops_theirs), timed(ours, loops_ours)) for _ in range(repeat)]
    return (
        statistics.median(t for t, _ in rounds),
        statistics.median(o for _, o in rounds),
        statistics.median(t / o for t, o in rounds),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the captured SDK workload")
    parser.add_argument("--fresh", action="store_true", help="capture the SDK inputs again")
    parser.add_argument("--only", default="", help="only inputs whose name contains this")
    args = parser.parse_args()
    decoder = msgspec.json.Decoder()
    with tempfile.TemporaryDirectory() as scratch:
        cases = inputs(args.seconds, args.fresh, Path(scratch))
    header = f"{'input':36} {'KB':>7} {'vroomrs/s':>10} {'MB/s':>6} {'profd/s':>9} {'MB/s':>6} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    ratios = []
    for name, (profile, kind) in cases.items():
        if args.only not in name:
            continue
        data = msgspec.json.encode(profile)
        text = data.decode()
        version, platform = profile.get("version") or "", profile["platform"]
        theirs, ours, ratio = compare(
            partial(vroomrs_write, text, kind, version, platform),
            partial(profd_write, decoder, data, kind),
            args.repeat,
        )
        megabytes = len(data) / 1e6
        ratios.append(ratio)
        print(
            f"{name:36} {len(data) / 1e3:7.1f} {1 / theirs:10.0f} {megabytes / theirs:6.1f} "
            f"{1 / ours:9.0f} {megabytes / ours:6.1f} {ratio:6.2f}"
        )
    print(f"geometric mean ratio profd/vroomrs: {statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
