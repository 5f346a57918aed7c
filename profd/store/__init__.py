"""I/O only: the store's protocols (protocols.py: Directory, ProfileIndex, ProfileReads,
BlobStore) and their implementations: blobs in object storage (blobs.py, obstore), the
directory and the index in SQLite (sqlite/).  profd.services builds them from URLs."""

from profd.store.blobs import BlobNotFound, BlobStore
from profd.store.profiles import ProfileStore
from profd.store.protocols import Directory, ProfileIndex, ProfileReads
from profd.store.records import Organization, Project, ProjectKey

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "Directory",
    "Organization",
    "ProfileIndex",
    "ProfileReads",
    "ProfileStore",
    "Project",
    "ProjectKey",
]
