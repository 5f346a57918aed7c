"""Hostile input against a real `profd serve`: 2,000 mutated envelopes from an attacker's
client (`tests.clients.hostile`), then the server's answers, memory, outcomes and storage.

Run with ``pytest -s`` to see the table of answer codes per mutation kind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.hostile import (
    Client,
    answer_problems,
    make_bomb,
    make_case,
    outcome_balance,
    peak_rss_kb,
    prepare_target,
    received_lower_bound,
    rss_bound_mb,
    send_cases,
    server_environment,
    storage_problems,
    summary_table,
)
from tests.e2e.server import Server, start_server

SEED = 20261201
CASES = 2000  # and 100 bombs after them
THREADS = 4


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fuzz") / "data", **server_environment())
    yield server
    server.stop()


def test_hostile_envelopes_get_an_answer_and_are_counted(fuzz_server: Server) -> None:
    server = fuzz_server
    assert server.process is not None
    target = prepare_target(server)
    # Peak RSS of the server process (ingest; the worker is a child process of its own),
    # against a bound from the limits over what it takes when idle (see rss_bound_mb).
    bound_mb = rss_bound_mb(peak_rss_kb(server.process.pid) / 1024, THREADS)
    answers, seconds = send_cases(target, SEED, CASES, threads=THREADS)
    # Then every client at once sends bombs only: memory must stay bounded for each of them.
    bombs, _ = send_cases(target, SEED, 25 * THREADS, threads=THREADS, first=CASES + 1, build=make_bomb)
    answers += bombs
    rss_mb = peak_rss_kb(server.process.pid) / 1024
    print(
        f"\n{len(answers)} envelopes in {seconds:.1f} s ({len(answers) / seconds:.0f}/s), {THREADS} clients"
    )
    print(summary_table(answers))
    print(f"server peak RSS {rss_mb:.0f} MB (bound {bound_mb:.0f} MB)")

    problems = answer_problems(answers)
    if rss_mb > bound_mb:
        problems.append(f"server peak RSS {rss_mb:.0f} MB > {bound_mb:.0f} MB")

    server.wait_until_drained(timeout=120)
    index = server.index()
    try:
        balance = outcome_balance(server.url, index)
        print(balance.describe())
        if not balance.holds:
            problems.append(balance.describe())
        known = received_lower_bound(answers)
        if balance.received is not None and balance.received < known:
            problems.append(f"received {balance.received} < {known} profile items in envelopes answered 200")
        problems += storage_problems(index, answers)
    finally:
        index.close()

    # And the server still takes a plain valid envelope.
    last = Client(target.host, target.port).send(make_case(SEED, 0, target))
    problems += answer_problems([last])
    server.wait_until_drained()
    index = server.index()
    try:
        problems += storage_problems(index, [last])
    finally:
        index.close()
    for problem in problems:
        print(problem)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "environment",
    [{"PROFD_KEY_RATE_LIMIT": "5/second"}, {"PROFD_QUEUE_MAX_DEPTH": "0"}],
    ids=["key rate limit", "queue full"],
)
def test_refused_for_load_with_429_and_counted_rate_limited(
    tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]
) -> None:
    server = start_server(tmp_path_factory.mktemp("limited") / "data", **environment)
    try:
        target = prepare_target(server)
        client = Client(target.host, target.port)
        answers = [client.send(make_case(SEED, number, target)) for number in range(10, 410, 10)]
        client.close()
        statuses = {a.status for a in answers}
        limited = [a for a in answers if a.status == 429]
        problems = [f"status {a.status}: {a.describe()}" for a in answers if a.status not in (200, 429)]
        if not limited:
            problems.append(f"no 429 among {len(answers)} envelopes sent at once: {statuses}")
        for answer in limited[:1]:
            for header in ("retry-after", "x-sentry-rate-limits"):
                if header not in answer.response_headers:
                    problems.append(f"429 without {header}: {answer.response_headers}")
        server.wait_until_drained()
        index = server.index()
        try:
            balance = outcome_balance(server.url, index)
            print(f"\n{environment}: {sorted(a.status or 0 for a in answers)}\n{balance.describe()}")
            if not balance.holds:
                problems.append(balance.describe())
            expected = sum(a.profile_items or 0 for a in limited)
            if balance.by_outcome.get("rate_limited") != expected:
                problems.append(
                    f"{balance.by_outcome.get('rate_limited')} RATE_LIMITED outcomes, expected {expected}"
                )
            problems += storage_problems(index, answers)
        finally:
            index.close()
        assert not problems, "\n".join(problems)
    finally:
        server.stop()
