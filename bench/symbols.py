"""Symbol lookups: profd's native symbolication against addr2line, and ProGuard remapping.

A generated C program (3,000 functions, inlined helpers, `gcc -g -O1`) is symbolicated at
100,000 of its instruction addresses by addr2line (one batch process, `-f -i -C`) and by
profd (symbolic's symcache, demangling, as the symbolicate stage does per frame); then a
generated 20,000-method ProGuard mapping remaps 100,000 frames; then one profile's
symbolication is timed cold (no symcache yet) and warm.

    .venv/bin/python -m bench.symbols          (from the repository root; needs gcc and binutils)
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
import time
from pathlib import Path

from profd.store.blobs import BlobStore
from profd.symbols.contract import NativeRequest, Scope
from profd.symbols.native import demangle
from profd.symbols.objects import SymbolObjects
from profd.symbols.store import SymbolStore
from profd.symbols.symbolicator import LocalSymbolicator

FUNCTIONS = 3000
ADDRESSES = 100_000


def program() -> str:
    parts = [
        "#include <stdio.h>\n",
        "static inline __attribute__((always_inline)) long mix(long x) {\n"
        "    long y = x * 31;\n    if (y & 1) y ^= 7;\n    return y;\n}\n",
    ]
    for i in range(FUNCTIONS):
        parts.append(
            f"__attribute__((noinline)) long work_{i}(long n) {{\n    long acc = {i};\n"
            f"    for (long k = 0; k < n; k++) {{\n        acc += mix(k + {i});\n    }}\n    return acc;\n}}\n"
        )
    calls = " + ".join(f"work_{i}(argc)" for i in range(0, FUNCTIONS, 50))
    parts.append(f'int main(int argc, char **argv) {{\n    printf("%ld\\n", {calls});\n    return 0;\n}}\n')
    return "".join(parts)


def text_addresses(binary: Path) -> list[int]:
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    addresses = []
    for line in listing.splitlines():
        head = line.split(":", 1)[0].strip()
        if line.startswith(" ") and head and all(c in "0123456789abcdef" for c in head):
            addresses.append(int(head, 16))
    return addresses


def mapping() -> str:
    lines = []
    for c in range(2000):
        lines.append(f"com.example.app.feature{c % 40}.Class{c} -> a{c}.b:")
        for m in range(10):
            start = m * 10 + 1
            lines.append(f"    {start}:{start + 9}:void method{m}(int):{100 + m * 10}:{109 + m * 10} -> m{m}")
    return "\n".join(lines) + "\n"


def main() -> None:
    random.seed(7)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source, binary = root / "big.c", root / "big"
        source.write_text(program())
        subprocess.run(["gcc", "-g", "-O1", "-o", str(binary), str(source)], check=True)
        candidates = text_addresses(binary)
        addresses = [random.choice(candidates) for _ in range(ADDRESSES)]

        start = time.perf_counter()
        subprocess.run(
            ["addr2line", "-f", "-i", "-C", "-e", str(binary)],
            input="\n".join(map(hex, addresses)),
            capture_output=True,
            text=True,
            check=True,
        )
        addr2line_seconds = time.perf_counter() - start

        from symbolic import debuginfo

        obj = next(iter(debuginfo.Archive.open(str(binary)).iter_objects()))
        start = time.perf_counter()
        symcache = obj.make_symcache()
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for address in addresses:
            for location in symcache.lookup(address):
                demangle(location.symbol)
        profd_seconds = time.perf_counter() - start
        print(
            f"native, {ADDRESSES} addresses of a {binary.stat().st_size // 1024} KB binary ({FUNCTIONS} functions)"
        )
        print(f"  addr2line -f -i -C (one batch)   {ADDRESSES / addr2line_seconds:10.0f} lookups/s")
        print(
            f"  profd (symcache, warm)           {ADDRESSES / profd_seconds:10.0f} lookups/s"
            f"   ratio {addr2line_seconds / profd_seconds:.1f}x   (symcache built once in {build_seconds * 1e3:.0f} ms)"
        )

        text = mapping()
        path = root / "mapping.txt"
        path.write_text(text)
        from symbolic.proguard import ProguardMapper

        start = time.perf_counter()
        mapper = ProguardMapper.open(str(path))
        open_seconds = time.perf_counter() - start
        frames = [
            (f"a{random.randrange(2000)}.b", f"m{random.randrange(10)}", random.randrange(1, 100))
            for _ in range(ADDRESSES)
        ]
        start = time.perf_counter()
        for class_name, method, line in frames:
            mapper.remap_frame(class_name, method, line)
        remap_seconds = time.perf_counter() - start
        print(
            f"proguard, {len(text) // 1024} KB mapping (20,000 methods): opened in {open_seconds * 1e3:.0f} ms,"
            f" {ADDRESSES / remap_seconds:.0f} remaps/s"
        )

        # The embedded default: files under the data directory, opened where they are.
        objects = SymbolObjects(BlobStore((root / "symbols").as_uri()), root / "symbols" / "cache")
        store = SymbolStore(objects, root / "index.sqlite3")
        data = binary.read_bytes()
        checksum = hashlib.sha1(data).hexdigest()
        store.put_chunk(checksum, data)
        store.assemble(1, checksum, "big", [checksum], None)
        image = {"type": "elf", "debug_id": str(obj.debug_id), "image_addr": "0x0", "image_size": len(data)}
        profile_frames = [{"instruction_addr": hex(a)} for a in addresses[:500]]
        request = NativeRequest(platform="rust", stacktraces=[{"frames": profile_frames}], modules=[image])
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            LocalSymbolicator(store).symbolicate(Scope(1, None), request)
            timings.append(time.perf_counter() - start)
        symbolicator = LocalSymbolicator(store)
        symbolicator.symbolicate(Scope(1, None), request)
        start = time.perf_counter()
        symbolicator.symbolicate(Scope(1, None), request)
        warm = time.perf_counter() - start
        print(
            f"one profile, 500 frames: cold {timings[0] * 1e3:.1f} ms (symcache built and saved),"
            f" from disk {timings[1] * 1e3:.1f} ms, warm {warm * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
