"""gcc builds a program, sentry-cli uploads it, profd symbolicates a profile of it like addr2line.

Every frame's function, file, line and inline chain must equal `addr2line -f -i -C` on
the address profd looked up: the address itself for a stack's leaf, the call instruction
(the return address minus one) for the frames above it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from profd.settings import Settings
from profd.store import BlobStore, ProfileStore
from tests.clients import sentry_cli
from tests.e2e.server import Server
from tests.e2e.test_proguard import token

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.npm]

NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"
IMAGE_ADDR = 0x5555_0000_0000

PROGRAM = """\
#include <stdio.h>
#include <stdlib.h>

static inline __attribute__((always_inline)) long square(long x) {
    long y = x * x;
    if (y > 1000) y -= 7;
    return y;
}

__attribute__((noinline)) long compute(long n) {
    long acc = 0;
    for (long i = 0; i < n; i++) {
        acc += square(i + n);
    }
    return acc;
}

__attribute__((noinline)) void report(long v) {
    printf("value=%ld\\n", v);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10;
    long r = compute(n);
    report(r);
    return 0;
}
"""


CPP_PROGRAM = """\
#include <cstdio>
#include <cstdlib>

namespace shop {
template <typename T> static inline __attribute__((always_inline)) T square(T x) {
    T y = x * x;
    if (y > 1000) y -= 7;
    return y;
}

struct Cart {
    __attribute__((noinline)) long compute(long n) const {
        long acc = 0;
        for (long i = 0; i < n; i++) {
            acc += square<long>(i + n);
        }
        return acc;
    }
};
}  // namespace shop

__attribute__((noinline)) void report(long v) { std::printf("value=%ld\\n", v); }

int main(int argc, char **argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 10;
    shop::Cart cart;
    long r = cart.compute(n);
    report(r);
    return 0;
}
"""


def addr2line(binary: Path, address: int) -> list[tuple[str, str, int]]:
    """(function, file name, line) innermost first, as binutils sees the address."""
    out = subprocess.run(
        ["addr2line", "-f", "-i", "-C", "-e", str(binary), hex(address)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    frames = []
    for function, location in zip(out[::2], out[1::2], strict=True):
        path, _, line = location.partition(":")
        frames.append((function, Path(path).name, int(re.match(r"\d+", line).group())))  # type: ignore[union-attr]
    return frames


def code_addresses(binary: Path, function: str) -> list[int]:
    """Instruction addresses inside `function`, from objdump."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    body = listing.split(f"<{function}>:\n", 1)[1].split("\n\n", 1)[0]
    return [int(line.split(":")[0], 16) for line in body.splitlines() if line.strip()]


@pytest.mark.skipif(
    not (shutil.which("gcc") and shutil.which("addr2line") and sentry_cli.npm_available()),
    reason="gcc, binutils and npm are needed",
)
@pytest.mark.parametrize(
    ("compiler", "suffix", "program", "leaf_function", "event_id"),
    [
        ("gcc", "c", PROGRAM, "compute", "ab" * 16),
        ("g++", "cpp", CPP_PROGRAM, "_ZNK4shop4Cart7computeEl", "ac" * 16),
    ],
)
def test_native_frames_match_addr2line(
    server: Server,
    tmp_path: Path,
    compiler: str,
    suffix: str,
    program: str,
    leaf_function: str,
    event_id: str,
) -> None:
    source = tmp_path / f"prog.{suffix}"
    source.write_text(program)
    binary = tmp_path / f"prog-{suffix}"
    subprocess.run([compiler, "-g", "-O1", "-o", str(binary), str(source)], check=True)
    from symbolic import debuginfo

    obj = next(iter(debuginfo.Archive.open(str(binary)).iter_objects()))
    cli = sentry_cli.install(NPM_CACHE)
    uploaded = sentry_cli.run(
        cli, server.url, token(server), "debug-files", "upload", "--type", "elf", str(binary)
    )
    assert uploaded.returncode == 0, uploaded.stderr
    assert str(obj.debug_id) in uploaded.stdout

    leaf_candidates = code_addresses(binary, leaf_function)
    leaves = leaf_candidates[1:-1:3]  # some of compute's instructions, the inlined square among them
    main_call = next(a for a in code_addresses(binary, "main") if a > code_addresses(binary, "main")[2])
    frames = [{"instruction_addr": hex(IMAGE_ADDR + a)} for a in [*leaves, main_call]]
    root = len(frames) - 1
    profile = {
        "version": "1",
        "platform": "rust",
        "event_id": event_id,
        "timestamp": "2026-11-26T10:00:00Z",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1"},
        "transactions": [
            {
                "id": "cd" * 16,
                "name": "native",
                "trace_id": "ef" * 16,
                "active_thread_id": "1",
                "relative_start_ns": "0",
                "relative_end_ns": "90000000",
            }
        ],
        "debug_meta": {
            "images": [
                {
                    "type": "elf",
                    "debug_id": str(obj.debug_id),
                    "code_id": obj.code_id,
                    "code_file": str(binary),
                    "image_addr": hex(IMAGE_ADDR),
                    "image_size": binary.stat().st_size,
                }
            ]
        },
        "profile": {
            "frames": frames,
            "stacks": [[leaf, root] for leaf in range(len(leaves))],
            "samples": [
                {"stack_id": i % len(leaves), "thread_id": "1", "elapsed_since_start_ns": str(i * 10_000_000)}
                for i in range(9)
            ],
        },
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    processed = subprocess.run(
        [sys.executable, "-m", "profd", "process", "--json", "--data-dir", str(server.data_dir), str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(processed.stdout)["outcome"] == "accepted", processed.stdout
    index = server.index()
    metadata = index.profile(1, event_id)
    assert metadata is not None
    stored = ProfileStore(BlobStore(Settings.load(data_dir=server.data_dir).blob_store_url), index).load(
        metadata
    )
    symbolicated = stored["profile"]["frames"]
    inlined = 0
    for s, stack in enumerate(stored["profile"]["stacks"]):
        leaf_address = leaves[s]
        expected = addr2line(binary, leaf_address) + addr2line(binary, main_call - 1)
        if suffix == "cpp" and len(expected) > 2:
            # addr2line names an inlined template instance after its caller ("compute" at
            # square's line 7); the DWARF names it square<long int>, as profd does.
            expected[0] = ("square<long int>", *expected[0][1:])
        actual = [
            (symbolicated[i]["function"], symbolicated[i]["filename"], symbolicated[i]["lineno"])
            for i in stack
        ]
        assert actual == expected, hex(leaf_address)
        inlined += len(expected) > 2
    assert inlined, "some leaf should sit in the inlined square()"
    image = stored["debug_meta"]["images"][0]
    assert image["debug_status"] == "found"
