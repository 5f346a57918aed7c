"""Hostile input at volume: N mutated envelopes (`tests.clients.hostile`) against a real
`profd serve` on loopback, with the fuzz test's small limits (4 MiB envelopes).

Prints the answer codes overall and per mutation kind, the bad answers (5xx, or none at
all) with their kinds, answers outside what the rules allow a case, the server's peak RSS,
throughput, and the outcome balance: profile items received (``/metrics``) against the
outcomes counted for them (accepted + invalid + filtered + rate-limited).  Exits 1 if any
answer was bad or the balance is off.

    .venv/bin/python -m bench.fuzz [N] [--threads 4] [--seed 20261201]   (from the repository root)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.clients.hostile import (
    ALLOWED,
    answer_problems,
    children_peak_rss_kb,
    outcome_balance,
    peak_rss_kb,
    prepare_target,
    received_items,
    send_cases,
    server_environment,
    storage_problems,
    summary_table,
)
from tests.e2e.server import start_server


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="envelopes to send [10000]")
    parser.add_argument("--threads", type=int, default=4, help="concurrent clients [4]")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(Path(scratch) / "data", **server_environment())
        try:
            assert server.process is not None
            target = prepare_target(server)
            answers, seconds = send_cases(target, args.seed, args.n, threads=args.threads)
            rss_mb = peak_rss_kb(server.process.pid) / 1024
            worker_mb = children_peak_rss_kb(server.process.pid) / 1024
            drain_start = time.monotonic()
            server.wait_until_drained(timeout=600)
            drained = time.monotonic() - drain_start
            index = server.index()
            try:
                balance = outcome_balance(server.url, index)
                stored = index.select("SELECT COUNT(*) AS n FROM profiles")[0]["n"]
                storage = storage_problems(index, answers)
            finally:
                index.close()
            metrics = received_items(server.url)
        finally:
            server.stop()

    sent_bytes = sum(a.size for a in answers)
    bad = [a for a in answers if a.bad]
    print(f"{len(answers)} envelopes, {args.threads} clients, seed {args.seed}")
    print(summary_table(answers))
    print()
    codes = Counter("none" if a.status is None else str(a.status) for a in answers)
    print("answer codes:", ", ".join(f"{code} x{n}" for code, n in sorted(codes.items())))
    outside = [a for a in answers if a.status is not None and a.status not in ALLOWED]
    print(f"bad answers (5xx or none): {len(bad)}; codes outside {sorted(ALLOWED)}: {len(outside)}")
    for kind, n in sorted(Counter(a.kind for a in bad).items()):
        print(f"  {kind}: {n}")
    problems = answer_problems(answers)
    if problems:
        print("answers outside the rules (a few per kind):")
        for problem in problems:
            print(f"  {problem}")
    print(
        f"throughput                 {len(answers) / seconds:8.1f} envelopes/s, "
        f"{sent_bytes / seconds / 2**20:.1f} MiB/s ({seconds:.1f} s; queue drained {drained:.1f} s later)"
    )
    print(f"peak RSS server / worker   {rss_mb:8.1f} / {worker_mb:.1f} MB")
    print(f"profiles stored            {stored:8d}")
    by_type = ", ".join(f"{t} {int(n)}" for t, n in sorted((metrics or {}).items()))
    print(f"outcome balance            {balance.describe()}  [received by type: {by_type or 'none'}]")
    if storage:
        print(f"storage problems: {len(storage)}")
        for problem in storage[:20]:
            print(f"  {problem}")
    return 1 if bad or not balance.holds else 0


if __name__ == "__main__":
    sys.exit(main())
