"""Sample-format profiles as speedscope files and as collapsed stacks.

speedscope (https://www.speedscope.app) reads one "sampled" profile per thread: stacks
root first, weighted by how long each sample lasted (until the next sample on its thread).
Collapsed stacks (``root;child;leaf count``) are what flamegraph.pl and most tools take.
Android method traces are not sample-shaped and are refused with a FormatError.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from profd.formats.errors import FormatError

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def thread_samples(profile: dict[str, Any]) -> dict[str, list[tuple[int, int]]]:
    """(time in ns, stack id) per thread, in time order; FormatError unless sample-shaped.

    Transaction profiles (v1) count time from the profile's start, chunks (v2) from the epoch.
    """
    trace = profile.get("profile") or {}
    if "samples" not in trace or "frames" not in trace:
        raise FormatError("only sample-format profiles can be exported this way", "$.profile", "unsupported")
    by_thread: dict[str, list[tuple[int, int]]] = {}
    for sample in trace["samples"]:
        if "timestamp" in sample:
            time_ns = int(float(sample["timestamp"]) * 1e9)
        else:
            time_ns = int(sample.get("elapsed_since_start_ns") or 0)
        by_thread.setdefault(str(sample["thread_id"]), []).append((time_ns, int(sample["stack_id"])))
    for samples in by_thread.values():
        samples.sort()
    return by_thread


def sample_durations(samples: list[tuple[int, int]]) -> list[int]:
    """How long each sample of one thread lasted: until the thread's next sample.

    The last sample has no successor, so it gets 0 rather than a guessed interval.
    """
    return [later[0] - earlier[0] for earlier, later in itertools.pairwise(samples)] + [0]


def frame_name(frame: dict[str, Any]) -> str:
    return str(frame.get("function") or frame.get("instruction_addr") or "unknown")


def to_speedscope(profile: dict[str, Any]) -> dict[str, Any]:
    trace = profile["profile"]
    threads = thread_samples(profile)
    frames = [
        {
            "name": frame_name(f),
            "file": f.get("abs_path") or f.get("filename"),
            "line": f.get("lineno"),
            "col": f.get("colno"),
        }
        for f in trace["frames"]
    ]
    names = {k: (v or {}).get("name") for k, v in (trace.get("thread_metadata") or {}).items()}
    active = str((profile.get("transaction") or {}).get("active_thread_id", ""))
    profiles = []
    for thread, samples in sorted(threads.items()):
        stacks = [list(reversed(trace["stacks"][stack_id])) for _, stack_id in samples]
        profiles.append(
            {
                "type": "sampled",
                "name": names.get(thread) or f"thread {thread}",
                "unit": "nanoseconds",
                "startValue": samples[0][0],
                "endValue": samples[-1][0],
                "samples": stacks,
                "weights": sample_durations(samples),
                "threadID": thread,
                "isMainThread": thread == active,
            }
        )
    main = next((i for i, p in enumerate(profiles) if p["isMainThread"]), 0)
    return {
        "$schema": SCHEMA,
        "exporter": "profd",
        "name": str(profile.get("transaction", {}).get("name") or profile.get("chunk_id") or "profile"),
        "activeProfileIndex": main,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


def to_collapsed(profile: dict[str, Any]) -> str:
    trace = profile["profile"]
    counts: Counter[str] = Counter()
    for samples in thread_samples(profile).values():
        for _, stack_id in samples:
            names = [
                frame_name(trace["frames"][i]).replace(";", ":") for i in reversed(trace["stacks"][stack_id])
            ]
            if names:
                counts[";".join(names)] += 1
    return "".join(f"{stack} {count}\n" for stack, count in sorted(counts.items()))
