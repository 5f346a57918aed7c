"""The web UI in headless Chromium, against a live `profd serve` filled by the real sentry-sdk.

Playwright drives Debian's chromium (`make browser` installs it); Playwright's own browser
builds are never downloaded. Without chromium the tests skip, unless PROFD_REQUIRE_BROWSER=1
(CI) makes that a failure. Screenshots are kept under test-artifacts/ui/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clients.python_sdk import run_workload
from tests.e2e.server import Server
from tests.e2e.wide import RELEASE as WIDE_RELEASE
from tests.e2e.wide import Wide, wide_fixture  # noqa: F401 (the `wide` fixture)

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
RELEASE = "workload@1.0.0"


def ui_url(server: Server) -> str:
    """The sign-in URL `profd serve` printed; the last one, should the server have restarted."""
    assert server.log is not None
    found = re.findall(r"Open the UI: (http://\S+/#token=\S+)", server.log.read_text())
    assert found, "profd serve printed no UI URL"
    return str(found[-1])


@dataclass
class Filled:
    server: Server
    profile_id: str  # the transaction profile this module's workload sent


@pytest.fixture(scope="module")
def filled(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """The shared server (other tests send the same workload to it), once it has indexed
    the transaction profile of this module's run of the sentry-sdk workload."""

    def transactions() -> set[str]:
        return {
            m.profile_id for m in server.index().profiles() if m.release == RELEASE and m.kind == "sample_v1"
        }

    before = transactions()
    run_workload(server.dsn, tmp_path_factory.mktemp("ui-workload"), seconds=2)
    server.wait_until_drained()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = transactions() - before
        if new:
            return Filled(server, new.pop())
        time.sleep(0.2)
    raise AssertionError("the workload's transaction profile was not indexed")


class Page:
    """A signed-in page plus what a test needs around it: errors seen, screenshots."""

    def __init__(self, page: Any, sign_in_url: str) -> None:
        self.page = page
        self.base, self.token = sign_in_url.split("/#token=", 1)
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def open(self, route: str) -> Any:
        self.page.goto(f"{self.base}/#{route}")
        return self.page

    def screenshot(self, name: str) -> Path:
        # d3-flame-graph animates for 300 ms after a change: picture the settled state.
        self.page.wait_for_timeout(400)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def ui(browser: Any, filled: Filled) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    signed_in = Page(page, ui_url(filled.server))
    page.goto(ui_url(filled.server))
    page.wait_for_selector("#profiles-table, .empty")
    yield signed_in
    context.close()
    assert not signed_in.errors, signed_in.errors


def frame(name: str) -> str:
    """A d3-flame-graph frame: one <g> per node, named by its function."""
    return f'#flamegraph svg g[name="{name}"]'


def test_token_from_the_url_is_kept_and_leaves_the_address_bar(ui: Page, filled: Filled) -> None:
    # The server fixture finds the DSN in the same log: the UI URL must not pass for one.
    assert "token" not in filled.server.dsn and filled.server.dsn.endswith("/1")
    page = ui.page
    assert "token" not in page.url
    assert page.url.endswith("#/profiles")
    assert page.evaluate("localStorage.getItem('profd.token')").startswith("profd_")


def test_profiles_page_lists_the_workload_transaction(ui: Page, filled: Filled) -> None:
    page = ui.open(f"/profiles?release={RELEASE}")
    page.wait_for_selector("#profiles-table")
    row = page.locator(f'#profiles-table tbody tr[data-profile-id="{filled.profile_id}"]')
    assert "workload-transaction" in row.inner_text()
    assert RELEASE in row.inner_text()
    ui.screenshot("profiles")
    # Filters reach the API: no profile has this release.
    page.locator("input[name=release]").fill("no-such-release")
    page.locator("input[name=release]").press("Enter")
    page.wait_for_selector("text=No profiles match")


def test_profile_flamegraph_shows_the_workload_functions(ui: Page, filled: Filled) -> None:
    page = ui.open(f"/profiles?release={RELEASE}&transaction=workload-transaction")
    page.locator(f'#profiles-table tr[data-profile-id="{filled.profile_id}"] a').click()
    page.wait_for_selector(frame("handle_request"))
    assert page.locator(frame("fib")).count() >= 1
    assert "main" in page.locator("#thread-select option:checked").inner_text().lower()
    # The label text is set when d3-flame-graph's transition ends.
    page.wait_for_function(
        "[...document.querySelectorAll('#flamegraph .d3-flame-graph-label')].some(e => e.textContent === 'handle_request')"
    )
    page.locator(frame("handle_request")).first.hover()
    assert "Self" in page.locator("#tooltip").inner_text()
    ui.screenshot("profile")


def test_aggregate_flamegraph_search_zoom_and_percentiles(ui: Page) -> None:
    page = ui.open(f"/flamegraph?release={RELEASE}")
    page.wait_for_selector(frame("fib"))
    page.locator(frame("handle_request")).first.hover()
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    for label in ("Total time", "Self time", "p75", "p95", "p99"):
        assert label in tip.inner_text()
    page.locator(".flame-toolbar .search").fill("fib")
    page.wait_for_selector(".flame-status:has-text('matching frames')")
    ui.screenshot("flamegraph")
    page.locator(frame("handle_request")).first.click()
    page.wait_for_selector(".flame-zoom:has-text('Zoomed to handle_request')")
    page.get_by_role("button", name="Reset zoom").click()
    page.wait_for_selector(".flame-toolbar button:disabled")


def test_functions_table_links_to_the_slowest_profile(ui: Page) -> None:
    page = ui.open(f"/functions?release={RELEASE}&sort=p95")
    page.wait_for_selector("#functions-table")
    assert page.locator('#functions-table tr[data-function="fib"]').count() == 1
    assert (page.locator("#functions-table th a.sorted").text_content() or "").startswith("p95")
    ui.screenshot("functions")
    page.locator('#functions-table tr[data-function="fib"] a.worst').click()
    page.wait_for_selector(frame("fib"))


def test_differential_flamegraph_between_two_releases(ui: Page) -> None:
    page = ui.open(f"/diff?mode=release&before_release={RELEASE}&after_release={RELEASE}")
    page.wait_for_selector("#diff-table")
    assert page.locator("#diff-table td", has_text=re.compile(r"^fib$")).count() == 1
    page.wait_for_selector(frame("fib"))
    ui.screenshot("diff")


def test_regressions_page_with_none_then_some_then_a_failing_server(ui: Page) -> None:
    page = ui.open("/regressions")
    # Every profile is in the last day; the day before is empty, so nothing can have regressed.
    page.wait_for_selector(".empty:has-text('No regressions')")
    ui.screenshot("regressions-none")
    # What the API answers is the server's business (tests/e2e/test_api.py); here, how the
    # page shows an answer with rows, and a failure.
    found = {
        "regressions": [
            {
                "name": "fib",
                "package": "__main__",
                "in_app": True,
                "fingerprint": 1,
                "before": {"p95": 10_000_000, "sum": 50_000_000, "count": 12, "per_profile": 5_000_000},
                "after": {"p95": 25_000_000, "sum": 90_000_000, "count": 14, "per_profile": 9_000_000},
                "change": 1.5,
                "examples": [{"project_id": 1, "profile_id": "ab" * 16}],
            }
        ]
    }
    page.route("**/regressions?*", lambda route: route.fulfill(json=found))
    ui.open("/regressions?compare=7d")
    row = page.locator('#regressions-table tr[data-function="fib"]')
    row.wait_for()
    assert "+150.0%" in row.inner_text() and "25.0 ms" in row.inner_text()
    assert row.locator("a.example").get_attribute("href") == f"#/profiles/1/{'ab' * 16}"
    ui.screenshot("regressions")
    page.unroute("**/regressions?*")
    page.route(
        "**/regressions?*", lambda route: route.fulfill(status=500, json={"detail": "the index is locked"})
    )
    ui.open("/regressions?compare=1h")
    page.wait_for_selector(".notice.error:has-text('the index is locked')")
    ui.errors = [e for e in ui.errors if "500" not in e]


def test_outcomes_chart_shows_accepted_profiles(ui: Page) -> None:
    page = ui.open("/outcomes")
    page.wait_for_selector('#outcomes-chart rect.bar[data-series="accepted"]')
    values = page.eval_on_selector_all(
        '#outcomes-chart rect.bar[data-series="accepted"]', "bars => bars.map(b => Number(b.dataset.value))"
    )
    assert sum(values) >= 1
    ui.screenshot("outcomes")


def test_projects_page_shows_the_dsn_and_sdk_snippets(ui: Page, filled: Filled) -> None:
    dsn = filled.server.dsn
    page = ui.open("/projects")
    page.wait_for_selector("code.dsn")
    assert dsn in page.locator("code.dsn").all_inner_texts()
    snippet = page.locator("pre.snippet.code").first.inner_text()
    assert f'dsn="{dsn}"' in snippet and 'profile_lifecycle="trace"' in snippet
    ui.screenshot("projects")
    page.get_by_role("tab", name="JavaScript (Node.js)").first.click()
    assert 'profileLifecycle: "trace"' in page.locator("pre.snippet.code").first.inner_text()


def test_a_refused_token_brings_back_the_form(ui: Page) -> None:
    page = ui.page
    page.evaluate("localStorage.setItem('profd.token', 'profd_not-a-token')")
    ui.open("/functions")
    page.wait_for_selector("form.signin .notice.error")
    assert "refused" in page.locator("form.signin").inner_text()
    ui.screenshot("signin")
    page.locator("input[name=token]").fill(ui.token)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("#functions-table")
    # The 401 the form was made for is logged by the browser; it is what this test wanted.
    ui.errors = [e for e in ui.errors if "401" not in e]


def test_zoom_into_a_flamegraph_bigger_than_its_budget_loads_the_deeper_frames(
    browser: Any, wide: Wide
) -> None:
    """The wide profile's tree has about 200 nodes; asked for 16, the page shows the heaviest
    and folds the rest into [other]; zooming into a route fetches its exact subtree."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    ui = Page(page, ui_url(wide.server))
    page.goto(ui_url(wide.server))
    page.wait_for_selector("#profiles-table, .empty")
    ui.open(f"/flamegraph?release={WIDE_RELEASE}&max_nodes=16")
    page.wait_for_selector(frame("route_6"))
    page.wait_for_selector(".summary:has-text('[other]')")
    assert page.locator(frame("[other]")).count() >= 1
    assert page.locator(frame("deep_6_0")).count() == 0
    page.locator(frame("route_6")).first.click()
    page.wait_for_selector(frame("deep_6_0"))
    for step in range(3):
        assert page.locator(frame(f"deep_6_{step}")).count() == 1
    page.wait_for_selector(".flame-zoom:has-text('Zoomed to route_6')")
    ui.screenshot("flamegraph-zoomed-subtree")
    page.get_by_role("button", name="Reset zoom").click()
    page.wait_for_selector(".flame-toolbar button:disabled")
    page.wait_for_selector(frame("route_13"))
    assert page.locator(frame("deep_6_0")).count() == 0
    context.close()
    assert not ui.errors, ui.errors
