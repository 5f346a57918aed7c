"""Every failure profd names, in one tree.  A leaf module: it imports nothing from profd,
so every layer (formats included) can raise these.

    ProfdError
    ├── InputError            what a client sent is wrong: INVALID with `reason`, committed,
    │   │                     never retried (Relay's and Sentry's discard reasons)
    │   └── FormatError       (profd.formats) a profile that breaks its format
    ├── Refused               a request refused as a whole: `status` is the HTTP answer
    └── BackendUnavailable    a store, index, directory or bus that did not answer: transient,
                              so the message is not committed but retried, then dead-lettered

A caller knows what to do from the type alone: count it, answer it, or retry it.
"""

from __future__ import annotations


class ProfdError(Exception):
    """The base of every error profd raises on purpose."""


class InputError(ProfdError, ValueError):
    """Bad input: becomes an INVALID outcome with `reason`, and is never retried."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Refused(ProfdError):
    """A request refused as a whole; answered as ``{"detail": ...}`` with `status` and `headers`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class BackendUnavailable(ProfdError):
    """A backend failed in a way that may pass (unreachable, full disk, locked, timed out).

    Never turned into INVALID: the work is retried with backoff, and ingest answers 503."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend} is unavailable: {detail}")
        self.backend = backend
        self.detail = detail
