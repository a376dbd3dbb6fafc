"""A served Turnout with nothing set up yet, the simulator as the upstream to add, and Debian's
chromium driven by Playwright (``executable_path``; never a downloaded browser build).

Missing chromium fails under ``CI=true`` and skips elsewhere. A failed test leaves a screenshot of
every page it had open under ``TURNOUT_UI_SHOTS`` (default: ``build/ui-failures``)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.live_server import serve
from tests.services import service_missing
from turnout.api.ui.session import login_link
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.migrate import upgrade

SIM_KEY = "sk-sim-ui-test-key"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TURNOUT_UI_SHOTS", ROOT / "build" / "ui-failures"))
DOCS = ROOT / "docs" / "ui"  # TURNOUT_UI_DOCS=1 saves the walkthrough's pages there (docs/ui.md)


async def doc_shot(page: Page, name: str) -> None:
    """Save the page for docs/ui.md when TURNOUT_UI_DOCS=1 (make ui-docs); otherwise nothing."""
    if os.environ.get("TURNOUT_UI_DOCS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def chromium_path() -> str:
    found = os.environ.get("TURNOUT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        service_missing("Chromium", "Debian's chromium is not installed (apt-get install -y chromium)")
    assert found is not None
    return found


@dataclass
class Ui:
    """The gateway under test, its simulator, and a way to open signed-in browser pages."""

    url: str
    sim_url: str
    container: Container
    browser: Browser
    pages: list[Page] = field(default_factory=list)

    def headers(self, sub: str, tenant: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.container.jwt.mint(sub, tenant, list(roles))}"}

    async def add_simulator(self) -> None:
        """The simulator as provider ``sim``, synced, through the admin API (what the walkthrough
        does through the form, faster)."""
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.headers("root", "platform", "platform_admin")
        ) as http:
            body = {"id": "sim", "display_name": "Simulator", "provider_type": "openai"}
            body |= {"api_base": f"{self.sim_url}/v1", "api_key": SIM_KEY}
            assert (await http.post("/api/v2/admin/providers", json=body)).status_code == 201
            assert (await http.post("/api/v2/admin/providers/sim/sync")).status_code == 200

    def link(self, sub: str, tenant: str, *roles: str) -> str:
        return login_link(self.container.jwt, self.url, sub, tenant, list(roles))

    async def signed_in(self, sub: str, tenant: str, *roles: str) -> Page:
        """A fresh browser context (its own cookies), signed in through a one-time login link."""
        context: BrowserContext = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        self.pages.append(page)
        await page.goto(self.link(sub, tenant, *roles))
        return page


@pytest.fixture
async def ui(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Ui]:
    executable = chromium_path()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/ui.db",
        data_dir=tmp_path / "data",
        jwt_secret=secrets.token_hex(32),
        master_key=secrets.token_hex(32),
        task_classifier="off",
        _env_file=None,  # type: ignore[call-arg]
    )
    container = Container.build(settings)
    await upgrade(container.engine)
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with serve(create_app(container=container)) as url, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            env = Ui(url, sim_url, container, browser)
            try:
                yield env
            finally:
                if getattr(request.node, "failed", False):
                    await _screenshots(env.pages, request.node.name)
                await browser.close()
    finally:
        await sim.stop()
        await container.aclose()


async def _screenshots(pages: list[Page], name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for n, page in enumerate(pages):
        if not page.is_closed():
            path = SHOTS / f"{name}-{n}.png"
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    report = yield
    if report.when == "call" and report.failed:
        item.failed = True  # type: ignore[attr-defined]
    return report
