"""What every profile document carries, whatever its format."""

from __future__ import annotations

from typing import Any

import msgspec


class ClientSdk(msgspec.Struct):
    name: str
    version: str


class DebugMeta(msgspec.Struct):
    # Images differ per type (macho, elf, sourcemap, proguard, ...); symbolication reads
    # them as plain objects, so only their container is typed here.  Written even when
    # empty: a profile that has `debug_meta` is symbolicated (JS source maps by release).
    images: list[dict[str, Any]] = []


class ProfileDocument(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Fields shared by all four formats: where the profile comes from and what it ran."""

    platform: str
    release: str | None = None
    environment: str | None = None
    client_sdk: ClientSdk | None = None
    debug_meta: DebugMeta | None = None
    measurements: dict[str, Any] | None = None
    # Added by the pipeline from the bus message; absent in what SDKs send.
    organization_id: int | None = None
    project_id: int | None = None
    retention_days: int | None = None
