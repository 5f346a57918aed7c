"""The one error a malformed profile raises.

Every check in `profd.formats` (and the ingest validation built on it) raises
`FormatError`.  It names what is wrong, where (a JSON path such as
``$.profile.samples[3].stack_id``) and which discard reason a client is told
(Relay's reason strings, so an SDK author recognises them).
"""

from __future__ import annotations

# The one import from outside formats: the root of profd's error tree, a leaf module.
from profd.errors import InputError


class FormatError(InputError):
    """A profile, chunk or message that does not follow its format."""

    def __init__(self, message: str, path: str = "$", reason: str = "profiling_invalid_json") -> None:
        super().__init__(f"{message} - at {path}", reason)
        self.message = message
        self.path = path
