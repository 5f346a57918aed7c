"""Logging: plain lines for a terminal, or one JSON object per line for a log pipeline
(``--log-format json`` / ``PROFD_LOG_FORMAT=json``).

Every line carries the id of the request it belongs to.  Ingest gives each envelope a
request id (the client's ``X-Request-Id`` when it sends a sane one), puts it in the bus
message's headers, and the worker handles that message under the same id: one grep
follows a profile from the HTTP request to its processing in another process.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("profd_request_id", default=None)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
FORMATS = ("text", "json")


def new_request_id(offered: str | None = None) -> str:
    """The client's id if it is short and plain (it ends up in logs), else a fresh one."""
    if offered and _SANE_ID.match(offered):
        return offered
    return uuid.uuid4().hex


@contextmanager
def handling(identity: str | None) -> Iterator[None]:
    """Log lines in this block (and threads it hands work to) carry `identity`."""
    token = request_id.set(identity)
    try:
        yield
    finally:
        request_id.reset(token)


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        identity = record.__dict__.get("request_id")
        if identity:
            line["request_id"] = identity
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str = "text", level: int = logging.WARNING) -> None:
    """Set up the root logger for a profd process (replacing what was there)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.addFilter(_RequestId())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
