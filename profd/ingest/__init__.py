"""Ingest: envelope items → validated, expanded profiles (Relay's role)."""

from profd.ingest.expand import Expanded, expand_profile, profile_type

__all__ = ["Expanded", "expand_profile", "profile_type"]
