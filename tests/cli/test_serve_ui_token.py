"""`profd serve` signs the web UI in with a token of its own, one live token at a time."""

from __future__ import annotations

from profd.cli import WEB_UI_TOKEN, _web_ui_token
from profd.services import Services


def test_each_start_revokes_the_previous_ui_token_and_nothing_else(services: Services) -> None:
    organization, _ = services.default_project()
    by_hand = services.directory.create_token(organization.id, "ci")
    first = _web_ui_token(services, organization.id)
    second = _web_ui_token(services, organization.id)
    assert services.directory.organization_for_token(first) is None
    assert services.directory.organization_for_token(second) == organization
    assert services.directory.organization_for_token(by_hand) == organization
    live = [t for t in services.directory.tokens(organization.id) if t.name == WEB_UI_TOKEN and not t.revoked]
    assert len(live) == 1


def test_the_ui_token_can_only_read(services: Services) -> None:
    organization, _ = services.default_project()
    token = services.directory.token_for_secret(_web_ui_token(services, organization.id))
    assert token is not None and token.scopes == ("org:read",)
