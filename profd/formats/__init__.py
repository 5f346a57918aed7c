"""What a profile is: pure data and checks, no I/O.  Imports nothing else from profd."""

from profd.formats.errors import FormatError
from profd.formats.message import ProfileMessage, decode_message, encode_message
from profd.formats.profile import Kind, decode_json, detect_kind, profile_event_id, validate

__all__ = [
    "FormatError",
    "Kind",
    "ProfileMessage",
    "decode_json",
    "decode_message",
    "detect_kind",
    "encode_message",
    "profile_event_id",
    "validate",
]
