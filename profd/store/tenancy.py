"""The directory's rules, whichever backend keeps it: project slugs, token scopes, secrets.

Every `Directory` implementation applies these, so that a data set moved between backends
means the same thing (and its tokens keep working: only their hashes are kept).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Literal, get_args

# Project slugs go into URLs and DSN listings.  All-digit slugs are refused because the API
# takes a project's slug or its id in the same path segment, and "7" must mean project 7.
SLUG = re.compile(r"[a-z0-9_-]{1,50}")

# Ids are 64-bit (SQLite integers, ClickHouse Int64): a larger one names nothing.
ID_LIMIT = 2**63


class InvalidSlug(ValueError):
    """A project slug outside the rule (``SLUG``, not all digits)."""


class SlugTaken(Exception):
    """The organization already has a project with this slug."""


# A token's scopes, named as Sentry's.  What each lets a token do is the web layer's
# business (profd.web.auth); the directory only refuses names that are not scopes.
Scope = Literal["org:read", "project:write", "project:releases", "org:admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)


class InvalidScope(ValueError):
    """A scope name profd does not know, or no scope at all."""


class RevokedToken(Exception):
    """A token was to be minted by one that has been revoked meanwhile."""


def check_slug(slug: str) -> None:
    """InvalidSlug unless `slug` may name a project."""
    if not SLUG.fullmatch(slug) or slug.isdigit():
        raise InvalidSlug(
            f"invalid slug {slug!r}: 1 to 50 lowercase letters, digits, '-' or '_', not only digits"
        )


def parse_scopes(names: Iterable[str]) -> tuple[Scope, ...]:
    """Known scope names, once each and in ``SCOPES`` order; InvalidScope otherwise."""
    wanted = set(names)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise InvalidScope(
            f"unknown scope {', '.join(map(repr, unknown))}: the scopes are {', '.join(SCOPES)}"
        )
    if not wanted:
        raise InvalidScope(f"a token needs at least one scope of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


def new_public_key() -> str:
    """A DSN public key: 32 hex digits, as Sentry's."""
    return secrets.token_hex(16)


def new_token_secret() -> str:
    return "profd_" + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """What the directory keeps of a token: never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()
