"""The web UI in Chromium, as a user walks it: a platform admin adds the simulator from its template
and syncs it, filters the catalog; a tenant admin enables three models for an agent and creates a
key; they chat with "auto" in the playground, rate one answer and regenerate another, and read why
a model was chosen; a tenant admin of another tenant sees none of it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
from playwright.async_api import Page, expect
from sqlalchemy import select

from tests.ui.conftest import SIM_KEY, Ui, doc_shot
from turnout.store.routing import Feedback


async def test_a_platform_admin_adds_and_syncs_the_simulator_then_filters_the_catalog(ui: Ui) -> None:
    page = await ui.signed_in("root", "platform", "platform_admin")
    await expect(page).to_have_url(re.compile(r"/ui/providers$"))
    await expect(page.get_by_text("No provider yet")).to_be_visible()

    await page.get_by_role("button", name=re.compile("Turnout simulator")).click()
    await expect(page.get_by_label("Id (slug)")).to_have_value("sim")
    await page.get_by_label("Base URL").fill(f"{ui.sim_url}/v1")  # this test's simulator port
    await page.get_by_label(re.compile("^API key")).fill(SIM_KEY)
    await page.get_by_role("button", name="Add provider").click()

    await expect(page).to_have_url(re.compile(r"/ui/providers/sim$"))
    await expect(page.get_by_text(f"{SIM_KEY[:3]}")).to_have_count(0)  # the key is never shown
    await page.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#test-result")).to_contain_text("Connected in")
    await page.get_by_role("button", name="Sync").click()
    await expect(page.locator("#sync-result")).to_contain_text("Synced 3 models: 3 added")
    await doc_shot(page, "provider")
    stream = await page.request.post(  # the button reads this stream: progress, then the result
        f"{ui.url}/ui/providers/sim/sync", headers={"x-csrf-token": await _csrf(page)}
    )
    events = [line for line in (await stream.text()).splitlines() if line.startswith("event:")]
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: progress" in events and events[-1] == "event: result", events

    await page.get_by_role("link", name="Models").click()
    await expect(page.locator("#model-count")).to_contain_text("3 models")
    await page.get_by_label("Search").fill("mini")
    await expect(page.locator("#model-count")).to_contain_text("1 model ")
    await expect(page.locator("#models-table")).to_contain_text("sim/gpt-4o-mini")
    await doc_shot(page, "models")
    assert "q=mini" in page.url  # the filter is in the address: a reload or a shared link keeps it
    await page.reload()
    await expect(page.locator("#model-count")).to_contain_text("1 model ")

    bad = await page.request.post(f"{ui.url}/ui/providers", form={"id": "x", "display_name": "X"})
    assert bad.status == 403 and "CSRF" in await bad.text()  # a form without the session's token


async def test_a_tenant_admin_sets_up_an_agent_and_chats_and_rates_in_the_playground(ui: Ui) -> None:
    await ui.add_simulator()

    page = await ui.signed_in("ann", "acme", "tenant_admin")
    await expect(page).to_have_url(re.compile(r"/ui/agents$"))
    await page.get_by_label("Id (optional slug)").fill("bot")
    await page.get_by_label("Name").fill("Bot")
    await page.get_by_role("button", name="Create agent").click()
    await expect(page).to_have_url(re.compile(r"/ui/agents/bot$"))

    adding = page.locator("#add-models")
    for model in ("sim/gpt-4o-mini", "sim/gpt-4o", "sim/text-embedding-3-small"):
        await adding.locator(f'input[value="{model}"]').check()
    await adding.get_by_role("button", name="Enable ticked").click()
    await expect(page.get_by_role("heading", name=re.compile(r"\(3 enabled\)"))).to_be_visible()

    await page.get_by_role("button", name="Create key").click()
    key = (await page.locator("#new-key").text_content() or "").strip()
    assert key.startswith("tk-")
    await page.reload()
    await expect(page.locator("#new-key")).to_have_count(0)  # shown once
    await doc_shot(page, "agent")
    async with httpx.AsyncClient(base_url=ui.url) as http:  # the key works on the data plane
        resp = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"messages": [{"role": "user", "content": "hi"}]},
        )
        assert resp.status_code == 200, resp.text

    await page.get_by_role("link", name="Playground").click()
    await expect(page.get_by_label("Model")).to_have_value("auto")
    await page.get_by_label("Message").fill("Write a haiku about rivers")
    await page.get_by_role("button", name="Send").click()
    first = page.locator(".bubble.assistant").nth(0)
    await expect(first.locator(".meta")).to_contain_text("sim/gpt-4o")
    await expect(first.locator(".meta")).to_contain_text("· $0.000000")  # its recorded cost (free)
    assert (await first.locator(".text").text_content() or "").strip() not in ("", "…")
    await first.get_by_role("button", name="Good answer").click()
    await expect(first.locator(".status")).to_have_text("rated 1")

    await page.get_by_label("Message").fill("And one about mountains")
    await page.get_by_role("button", name="Send").click()
    second = page.locator(".bubble.assistant").nth(1)
    await expect(second.locator(".meta")).to_contain_text("ms")
    replaced = await second.get_attribute("data-message-id")
    await second.get_by_role("button", name="Regenerate").click()
    fresh = page.locator(".bubble.assistant").nth(1)
    await expect(fresh).to_have_attribute(
        "data-message-id", re.compile(r"^(?!" + re.escape(replaced or "") + r"$).")
    )
    await expect(fresh.locator(".meta")).to_contain_text("ms")
    await expect(page.locator(".bubble.assistant")).to_have_count(2)  # replaced, not added

    rated = await first.get_attribute("data-message-id")
    async with ui.container.sessions() as session:
        ratings = {
            row.message_id: (row.rating, row.feedback_type)
            for row in await session.scalars(
                select(Feedback).where(Feedback.message_id.in_([rated, replaced]))
            )
        }
    assert ratings == {rated: (1.0, "explicit"), replaced: (0.0, "implicit")}

    await fresh.get_by_role("button", name="Why this model?").click()
    await expect(fresh.locator(".why")).to_contain_text("Task detected")
    await expect(fresh.locator(".why")).to_contain_text("Chosen: sim/")
    await doc_shot(page, "playground")

    await page.get_by_role("link", name="Dashboard").click()  # the ratings reach the dashboard
    rated_rows = page.locator("#performance tbody tr", has_text="(1 rated)")  # 1.0 and the implicit 0.0

    async def both_rated() -> bool:
        return await rated_rows.count() == 2

    await _until(page, both_rated)
    await expect(page.locator("#performance tbody")).to_contain_text("1.00")
    await doc_shot(page, "dashboard")

    await page.get_by_role("link", name="Records").click()  # the calls, each with its decision
    await expect(page.locator("#records tbody tr")).to_have_count(4)  # 1 by key + 3 in the playground
    await page.locator("#records tbody tr").first.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Routing decision")).to_be_visible()
    await expect(page.locator(".decision")).to_contain_text("Task detected")
    await page.get_by_role("link", name="Spend").click()
    await expect(page.locator("#spend tfoot th").nth(1)).to_have_text("4")

    other = await ui.signed_in("gus", "globex", "tenant_admin")  # another tenant sees none of it
    await expect(other.get_by_text("No agent yet")).to_be_visible()
    await other.goto(f"{ui.url}/ui/agents/bot")
    await expect(other.get_by_role("alert")).to_contain_text("not found")
    await other.goto(f"{ui.url}/ui/playground")
    await expect(other.get_by_text("No active agent in tenant globex")).to_be_visible()
    feedback = await other.request.post(
        f"{ui.url}/ui/playground/feedback/{rated}",
        data={"rating": 0.0},
        headers={"x-csrf-token": await _csrf(other)},
    )
    assert feedback.status == 404, await feedback.text()
    await other.goto(f"{ui.url}/ui/records")
    await expect(other.get_by_text("No call matches")).to_be_visible()
    await other.goto(f"{ui.url}/ui/dashboard")
    await expect(other.get_by_text("No call yet")).to_be_visible()
    await other.goto(f"{ui.url}/ui/records/{rated}")
    await expect(other.get_by_role("alert")).to_contain_text("not found")
    await other.goto(f"{ui.url}/ui/providers")
    await expect(other.get_by_role("alert")).to_contain_text("needs the platform_admin role")


async def test_a_login_link_works_once_and_opens_no_api(ui: Ui) -> None:
    link = ui.link("ann", "acme", "tenant_admin")
    page = await ui.signed_in("ann", "acme", "tenant_admin")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "turnout_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"

    await page.goto(link)
    await page.goto(link)  # the same link again
    await expect(page.get_by_role("alert")).to_contain_text("already used")

    token = link.split("token=", 1)[1]
    async with httpx.AsyncClient(base_url=ui.url) as http:
        for credential in (token, cookie["value"]):
            resp = await http.get("/api/v2/agents", headers={"Authorization": f"Bearer {credential}"})
            assert resp.status_code == 401 and "not an API bearer token" in resp.text


async def test_a_pasted_jwt_signs_in_and_a_bad_one_says_why(ui: Ui) -> None:
    context = await ui.browser.new_context()
    page = await context.new_page()
    ui.pages.append(page)
    await page.goto(f"{ui.url}/ui/agents")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await page.get_by_label("Token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#token-error")).to_contain_text("not a JWT")
    await page.get_by_label("Token").fill(ui.container.jwt.mint("una", "acme", ["user"]))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/ui/playground$"))
    await expect(page.get_by_role("link", name="Agents")).to_have_count(0)  # a user's menu


async def _until(page: Page, seen: Callable[[], Awaitable[bool]], tries: int = 40) -> None:
    """Reload until ``seen()``: ratings reach the records a moment after they are given."""
    for _ in range(tries):
        if await seen():
            return
        await asyncio.sleep(0.25)
        await page.reload()
    raise AssertionError(f"not seen on {page.url} after {tries} reloads")


async def _csrf(page: object) -> str:
    from playwright.async_api import Page

    assert isinstance(page, Page)
    return str(await page.locator('meta[name="csrf-token"]').get_attribute("content"))
