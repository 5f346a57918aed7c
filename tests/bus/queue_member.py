"""One member of a consumer group on the local queue, as its own process, for the shared
queue's tests: the real `Worker` (Arroyo's StreamProcessor, run, then commit) with a handler
that appends ``<offset> <value>`` to a file of its own, flushed, so what it handled is on
disk before its commit even if it is killed a moment later.

    python -m tests.bus.queue_member QUEUE OUT [--hang-on FIRST_VALUE_PREFIX] [--commit-every N]
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from arroyo.commit import IMMEDIATE, CommitPolicy

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP, Retries, Worker
from profd.formats.message import Headers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--hang-on", default=None, help="claim a message starting with this and never finish it"
    )
    parser.add_argument("--commit-every", type=int, default=1)
    parser.add_argument("--work-seconds", type=float, default=0.0)
    parser.add_argument("--member-timeout", type=float, default=30.0)
    args = parser.parse_args()
    queue = SqliteQueue(args.queue, member_timeout=args.member_timeout)
    out = args.out.open("a")

    def handle(value: bytes, headers: Headers, message_id: str) -> None:
        if args.hang_on is not None and value.startswith(args.hang_on.encode()):
            out.write(f"claimed {message_id} {value.decode()}\n")
            out.flush()
            while True:
                time.sleep(1)
        time.sleep(args.work_seconds)
        out.write(f"handled {message_id} {value.decode()}\n")
        out.flush()

    # As profd's workers do: a batch of messages, or half a second, whichever comes first
    # (by messages alone, the last few of a burst would wait for the next burst).
    policy = IMMEDIATE if args.commit_every == 1 else CommitPolicy(0.5, args.commit_every)
    worker = Worker(queue.consumer(CONSUMER_GROUP), handle, queue, Retries(3, 0.01), commit_policy=policy)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    out.write("started\n")
    out.flush()
    try:
        worker.run()
    finally:
        queue.close()


if __name__ == "__main__":
    main()
