"""Where processed profiles go: a zstd blob per profile, its row and its functions in the index.

The pipeline's analysis stage hands over the profile finished (normalized, its rows
computed: profd.pipeline.analyse); this module only writes, so later queries read the
index and never the blobs.  The blob is written first and the rows second, both
idempotent: a crash between the two is repaired by processing the message again, and a
redelivered message changes nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import zstandard

from profd.formats.rows import ProcessedProfile, ProfileMetadata
from profd.store.protocols import BlobStore, ProfileIndex

# zstd at level 3 compresses profile JSON ~8x at hundreds of MB/s; higher levels buy
# little on JSON this repetitive and cost the pipeline's throughput.
ZSTD_LEVEL = 3

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class ProfileStore:
    def __init__(self, blobs: BlobStore, index: ProfileIndex, default_retention_days: int = 90) -> None:
        self.blobs = blobs
        self.index = index
        self.default_retention_days = default_retention_days

    def push(self, processed: ProcessedProfile) -> ProfileMetadata:
        """Store a processed profile.  An unsampled one (its transaction was dropped by
        sampling) is indexed for its function metrics only, as Sentry keeps no blob of it."""
        metadata = processed.metadata
        if metadata.sampled:
            self.blobs.put_if_absent(metadata.blob_key, encode_blob(processed.document))
        self.index.insert_profile(metadata, processed.functions, processed.flame)
        return metadata

    def expire(self, now: float | None = None) -> int:
        """Delete profiles past their retention: blobs first, then their index rows; then
        outcomes older than their organization's retention.

        A crash in between leaves index rows whose blob is gone, which the next run deletes;
        never a blob without its row, which nothing would find again.
        """
        now = time.time() if now is None else now
        removed = 0
        while batch := self.index.expired(now):
            for metadata in batch:
                if metadata.sampled:
                    self.blobs.delete(metadata.blob_key)
            self.index.delete_profiles(batch)
            removed += len(batch)
        # Outcomes describe the profiles, so they go with them.
        self.index.expire_outcomes(now, self.default_retention_days)
        return removed

    def load(self, metadata: ProfileMetadata) -> dict[str, Any]:
        document = _decoder.decode(decompress(self.blobs.get(metadata.blob_key)))
        if not isinstance(document, dict):
            raise ValueError(f"blob {metadata.blob_key} does not hold a profile")
        return document


def encode_blob(document: dict[str, Any]) -> bytes:
    """A profile as its blob holds it: JSON, zstd-compressed."""
    return compress(_encoder.encode(document))


# Compressor contexts are costly to set up (as much as compressing a small profile) and
# not thread-safe, so each thread keeps its own.
_contexts = threading.local()


def compress(data: bytes) -> bytes:
    compressor = getattr(_contexts, "compressor", None)
    if compressor is None:
        compressor = _contexts.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return bytes(compressor.compress(data))


def decompress(data: bytes) -> bytes:
    decompressor = getattr(_contexts, "decompressor", None)
    if decompressor is None:
        decompressor = _contexts.decompressor = zstandard.ZstdDecompressor()
    return bytes(decompressor.decompress(data))
