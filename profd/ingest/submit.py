"""From what a client sent to a bus message, or to a counted rejection.

A profile arrives as an envelope item (with its transaction beside it) or as a file; either
way it is expanded as Relay expands it and wrapped in the bus message, or it is rejected
with Relay's reason and counted as INVALID in the categories it would have been billed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from profd.formats import FormatError, ProfileMessage, decode_json, profile_event_id
from profd.formats.outcome import DataCategory, Outcome, rejected_categories
from profd.ingest.envelope import Envelope
from profd.ingest.expand import DEFAULT_MAX_SIZE, expand_profile

log = logging.getLogger(__name__)

PROFILE_ITEM_TYPES = ("profile", "profile_chunk")


class OutcomeTracking(Protocol):
    def track_outcome(
        self,
        org_id: int,
        project_id: int,
        key_id: int | None,
        outcome: Outcome,
        reason: str | None = None,
        timestamp: Any = None,
        event_id: str | None = None,
        category: DataCategory | None = None,
        quantity: int | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class ProfileItem:
    payload: bytes
    item_type: str
    platform: str | None = None
    transaction: dict[str, Any] | None = None
    sampled: bool = True


def envelope_items(envelope: Envelope) -> list[ProfileItem]:
    """The profile items of an envelope, each with the envelope's transaction event."""
    transaction_item = envelope.first("transaction")
    try:
        transaction = transaction_item.json() if transaction_item is not None else None
    except FormatError as e:
        # A broken transaction is dropped (Relay counts it as an error event); its profile
        # then travels alone and is refused as missing its transaction.
        log.info("transaction item dropped: %s", e)
        transaction = None
    return [
        ProfileItem(
            payload=item.payload,
            item_type=item.type,
            platform=item.headers.get("platform"),
            transaction=transaction if item.type == "profile" else None,
            sampled=item.headers.get("sampled") is not False,
        )
        for item in envelope.items
        if item.type in PROFILE_ITEM_TYPES
    ]


def file_item(data: bytes, sampled: bool = True) -> ProfileItem:
    """A profile file: a chunk if it names a profiler, else a transaction profile."""
    chunk = peek(data).get("profiler_id") is not None
    return ProfileItem(payload=data, item_type="profile_chunk" if chunk else "profile", sampled=sampled)


def to_message(
    item: ProfileItem,
    *,
    organization_id: int,
    project_id: int,
    received: int,
    key_id: int | None = None,
    retention_days: int | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> ProfileMessage:
    """Expand the item into Relay's bus message; raises FormatError with Relay's reason."""
    expanded = expand_profile(
        item.payload,
        item_type="profile_chunk" if item.item_type == "profile_chunk" else "profile",
        transaction=item.transaction,
        item_platform=item.platform,
        max_size=max_size,
    )
    return ProfileMessage(
        type="profile_chunk" if expanded.kind.is_chunk else "profile",
        organization_id=organization_id,
        project_id=project_id,
        key_id=key_id,
        received=received,
        retention_days=retention_days,
        payload=expanded.payload,
    )


def track_rejection(
    outcomes: OutcomeTracking,
    item: ProfileItem,
    error: FormatError,
    *,
    organization_id: int,
    project_id: int,
    key_id: int | None = None,
) -> list[DataCategory]:
    """Count a rejected item as INVALID with its reason; returns the categories counted."""
    doc = peek(item.payload)
    categories = rejected_categories(
        chunk=item.item_type == "profile_chunk",
        platform=item.platform or doc.get("platform"),
        sampled=item.sampled,
    )
    event_id = profile_event_id(doc)
    for category in categories:
        outcomes.track_outcome(
            organization_id, project_id, key_id, Outcome.INVALID, error.reason, None, event_id, category
        )
    log.warning("profile %s rejected: %s", event_id, error)
    return categories


def peek(data: bytes) -> dict[str, Any]:
    """The payload as a JSON object if it is one (for ids and platform in reports), else {}."""
    try:
        return decode_json(data)
    except FormatError:
        return {}
