"""Analyse stage: what vroom computes on insertion, computed before the profile is stored.

The profile is normalized (vroom's rules, in place), its searchable facts extracted, its
call trees built once and read twice: for function metrics (Sentry's parameters) and folded
by path for aggregate flamegraphs.  The store receives the result finished and computes
nothing.
"""

from __future__ import annotations

from typing import Any

from profd.analysis.flame import fold
from profd.analysis.metadata import extract_metadata
from profd.analysis.normalize import normalize
from profd.analysis.profile_functions import call_trees, profile_functions
from profd.formats import Kind
from profd.formats.rows import ProcessedProfile


def analyse_profile(profile: dict[str, Any], kind: Kind, default_retention_days: int) -> ProcessedProfile:
    normalize(profile, kind)
    metadata = extract_metadata(profile, kind, default_retention_days)
    trees = call_trees(profile, kind)
    functions = profile_functions(profile, kind, trees=trees)
    return ProcessedProfile(profile, metadata, functions, fold(trees))
