"""The Routing screen in Chromium: a platform admin edits a policy (a bad value gets its error and
changes nothing) and the task map; a tenant admin explains a message for their agent and may read,
not change, the policies."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.ui.conftest import Ui


async def _setup(ui: Ui) -> None:
    ann = ui.headers("ann", "acme", "tenant_admin")
    await ui.add_simulator()
    async with httpx.AsyncClient(base_url=ui.url) as http:
        agent = {"id": "bot", "name": "Bot"}
        assert (await http.post("/api/v2/agents", json=agent, headers=ann)).status_code == 201
        chosen = {"model_ids": ["sim/gpt-4o-mini", "sim/gpt-4o"]}
        assert (await http.post("/api/v2/agents/bot/models", json=chosen, headers=ann)).status_code < 300


async def test_policies_and_the_task_map_are_edited_and_a_message_is_explained(ui: Ui) -> None:
    await _setup(ui)
    page = await ui.signed_in("root", "platform", "platform_admin")
    await page.goto(f"{ui.url}/ui/routing")
    await page.get_by_label("code max tokens").fill("-5")
    await page.get_by_role("button", name="Save code").click()
    await expect(page.get_by_role("alert")).to_contain_text("max_tokens")
    policies = {p.name: p for p in await ui.container.routing_admin.list_policies()}
    assert policies["code"].max_tokens != -5  # nothing changed

    await page.get_by_label("code max tokens").fill("2048")
    await page.get_by_label("code temperature").fill("0.2")
    await page.get_by_role("button", name="Save code").click()
    await expect(page.get_by_label("code max tokens")).to_have_value("2048")
    policies = {p.name: p for p in await ui.container.routing_admin.list_policies()}
    assert (policies["code"].max_tokens, policies["code"].temperature) == (2048, 0.2)

    await page.get_by_label("creative", exact=True).select_option("deep_research")
    await page.get_by_role("button", name="Save task map").click()
    await expect(page.get_by_label("creative", exact=True)).to_have_value("deep_research")
    assert (await ui.container.routing_admin.task_policies())["creative"] == "deep_research"

    ann = await ui.signed_in("ann", "acme", "tenant_admin")
    await ann.get_by_role("link", name="Routing").click()
    await expect(ann.get_by_role("button", name="Save code")).to_have_count(0)  # read, not change
    await ann.get_by_label("Agent").select_option("bot")
    await ann.get_by_label("Message").fill("Write a poem about the sea")
    await ann.get_by_role("button", name="Explain").click()
    decision = ann.locator(".decision")
    await expect(decision).to_contain_text("Task detected: creative")
    await expect(decision).to_contain_text("policy deep_research")
    await expect(decision).to_contain_text(re.compile(r"Chosen: sim/gpt-4o"))
    refused = await ann.request.post(
        f"{ui.url}/ui/routing/task-policies",
        form={"task:creative": "normal", "csrf": "x"},
    )
    assert refused.status == 403 and "platform_admin" in await refused.text()
