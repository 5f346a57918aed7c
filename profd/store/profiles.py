"""Where processed profiles go: a zstd blob per profile plus its row in the index.

The blob is written first and the row second, both idempotent, so a crash between the two
is repaired by processing the message again, and a redelivered message finds both in place.
"""

from __future__ import annotations

from typing import Any

import msgspec
import zstandard

from profd.analysis.metadata import ProfileMetadata, extract_metadata
from profd.formats import Kind
from profd.store.blobs import BlobStore
from profd.store.index import Index

# Level 3 compresses profile JSON about 8x at several hundred MB/s; higher levels buy
# little on JSON this repetitive and cost the pipeline's throughput.
ZSTD_LEVEL = 3

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class ProfileStore:
    def __init__(self, blobs: BlobStore, index: Index, default_retention_days: int = 90) -> None:
        self.blobs = blobs
        self.index = index
        self.default_retention_days = default_retention_days

    def push(self, profile: dict[str, Any], kind: Kind) -> ProfileMetadata | None:
        """Store a processed profile; None for an unsampled one, which is not kept.

        Like Sentry, profd keeps only profiles whose transaction was sampled; unsampled ones
        are processed for their outcomes and (later) their function metrics.
        """
        if profile.get("sampled") is False:
            return None
        metadata = extract_metadata(profile, kind, self.default_retention_days)
        self.blobs.put_if_absent(metadata.blob_key, compress(_encoder.encode(profile)))
        self.index.insert_profile(metadata)
        return metadata

    def load(self, metadata: ProfileMetadata) -> dict[str, Any]:
        document = _decoder.decode(decompress(self.blobs.get(metadata.blob_key)))
        if not isinstance(document, dict):
            raise ValueError(f"blob {metadata.blob_key} does not hold a profile")
        return document


def compress(data: bytes) -> bytes:
    return bytes(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))


def decompress(data: bytes) -> bytes:
    return bytes(zstandard.ZstdDecompressor().decompress(data))
