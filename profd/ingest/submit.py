"""From what a client sent to a bus message, or to a counted rejection.

A profile arrives as an envelope item (with its transaction beside it) or as a file; either
way it is expanded as Relay expands it and wrapped in the bus message, or it is rejected
with Relay's reason and counted as INVALID in the categories it would have been billed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from profd.formats import FormatError, ProfileMessage, decode_json, profile_event_id
from profd.formats.outcome import Outcome, OutcomeRecord, rejected_categories
from profd.ingest.envelope import Envelope
from profd.ingest.expand import DEFAULT_MAX_SIZE, expand_profile

log = logging.getLogger(__name__)

PROFILE_ITEM_TYPES = ("profile", "profile_chunk")
_REFUSALS = {
    "profiling_too_many_profiles": "only the first profile item of an envelope is processed",
    "missing_transaction": "a sampled profile must travel with its transaction",
}


class OutcomeTracking(Protocol):
    def track_outcomes(self, records: Sequence[OutcomeRecord]) -> object: ...


@dataclass(frozen=True)
class ProfileItem:
    payload: bytes
    item_type: str
    platform: str | None = None
    transaction: dict[str, Any] | None = None
    sampled: bool = True
    # Relay's reason when the envelope's item rules already refuse the item.
    refused: str | None = None


def envelope_items(envelope: Envelope) -> list[ProfileItem]:
    """The profile items of an envelope, each with the envelope's transaction event.

    Relay's item rules: only the first ``profile`` item is processed, every further one is
    refused as ``profiling_too_many_profiles`` (an envelope is one transaction, so it has
    one profile); a sampled profile needs its transaction (``missing_transaction``).
    Profile chunks have no such rule: a continuous profiler may flush several at once.
    """
    transaction_item = envelope.first("transaction")
    try:
        transaction = transaction_item.json() if transaction_item is not None else None
    except FormatError as e:
        # A broken transaction is dropped (Relay counts it as an error event); its profile
        # then travels alone and is refused as missing its transaction.
        log.info("transaction item dropped: %s", e)
        transaction = None
    items = []
    profiles = 0
    for item in envelope.items:
        if item.type not in PROFILE_ITEM_TYPES:
            continue
        refused = None
        sampled = item.headers.get("sampled") is not False
        if item.type == "profile":
            profiles += 1
            if profiles > 1:
                refused = "profiling_too_many_profiles"
            elif sampled and transaction is None:
                refused = "missing_transaction"
        items.append(
            ProfileItem(
                payload=item.payload,
                item_type=item.type,
                platform=_text(item.headers.get("platform")),
                transaction=transaction if item.type == "profile" else None,
                sampled=sampled,
                refused=refused,
            )
        )
    return items


def _text(value: object) -> str | None:
    """A header field that should be a string; anything else is as good as absent."""
    return value if isinstance(value, str) else None


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
    if item.refused is not None:
        raise FormatError(_REFUSALS.get(item.refused, item.refused), "$", item.refused)
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


@dataclass(frozen=True)
class Submitted:
    """What became of one item: its bus message, or its rejection and INVALID outcomes."""

    item: ProfileItem
    message: ProfileMessage | None
    rejection: FormatError | None = None
    outcomes: tuple[OutcomeRecord, ...] = ()


def submit(
    items: Sequence[ProfileItem],
    *,
    organization_id: int,
    project_id: int,
    received: int,
    key_id: int | None = None,
    retention_days: int | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> list[Submitted]:
    """Each item expanded into its bus message, or rejected with Relay's reason: the one way
    both the envelope endpoint and `profd process` turn items into messages."""
    done = []
    for item in items:
        try:
            try:
                message = to_message(
                    item,
                    organization_id=organization_id,
                    project_id=project_id,
                    received=received,
                    key_id=key_id,
                    retention_days=retention_days,
                    max_size=max_size,
                )
            except RecursionError:
                # A structure nested too deeply for some step after decoding: still bad JSON.
                raise FormatError("nested too deeply", "$", "profiling_invalid_json") from None
        except FormatError as e:
            log.info("profile item rejected: %s", e)
            outcomes = item_outcomes(
                item,
                Outcome.INVALID,
                e.reason,
                organization_id=organization_id,
                project_id=project_id,
                key_id=key_id,
            )
            done.append(Submitted(item, None, e, tuple(outcomes)))
        else:
            done.append(Submitted(item, message))
    return done


def item_outcomes(
    item: ProfileItem,
    outcome: Outcome,
    reason: str | None,
    *,
    organization_id: int,
    project_id: int,
    key_id: int | None = None,
) -> list[OutcomeRecord]:
    """The outcomes of an item dropped before processing (invalid or rate limited), in
    every category it would have been billed in."""
    doc = peek(item.payload)
    platform = item.platform or doc.get("platform")
    now = datetime.now(UTC)
    event_id = profile_event_id(doc)
    return [
        OutcomeRecord(
            timestamp=now,
            org_id=organization_id,
            project_id=project_id,
            key_id=key_id,
            outcome=outcome,
            reason=reason,
            # A hostile id could be anything; it is a report, so keep it short.
            event_id=event_id[:64] if isinstance(event_id, str) else None,
            category=category,
            quantity=1,
        )
        for category in rejected_categories(
            chunk=item.item_type == "profile_chunk",
            platform=platform if isinstance(platform, str) else None,
            sampled=item.sampled,
        )
    ]


def peek(data: bytes) -> dict[str, Any]:
    """The payload as a JSON object if it is one (for ids and platform in reports), else {}."""
    try:
        return decode_json(data)
    except FormatError:
        return {}
