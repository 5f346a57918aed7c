"""I/O only: profile blobs in object storage and the index beside them."""

from profd.store.blobs import BlobNotFound, BlobStore
from profd.store.index import Index, Organization, Project, ProjectKey
from profd.store.profiles import ProfileStore

__all__ = ["BlobNotFound", "BlobStore", "Index", "Organization", "ProfileStore", "Project", "ProjectKey"]
