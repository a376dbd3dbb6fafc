"""The catalog's model detail and custom-model form, and an agent's bulk actions, priority override
and audit log, in Chromium, with the API's errors next to the fields they name."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.ui.conftest import Ui


async def test_a_model_is_edited_and_a_custom_one_added_with_errors_by_their_fields(ui: Ui) -> None:
    await ui.add_simulator()
    page = await ui.signed_in("root", "platform", "platform_admin")
    await page.goto(f"{ui.url}/ui/models")
    await page.get_by_role("link", name="gpt-4o-mini").click()
    await expect(page.get_by_role("heading", name="sim/gpt-4o-mini")).to_be_visible()

    await page.get_by_label("Priority (0-100)").fill("250")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#m-priority-error")).to_contain_text("100")
    assert (await ui.container.models.get("sim/gpt-4o-mini")).priority != 250

    await page.get_by_label("Priority (0-100)").fill("90")
    await page.get_by_label("Alias (clients may call it by this name)").fill("fast")
    await page.get_by_label("vision").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    model = await ui.container.models.get("sim/gpt-4o-mini")
    assert (model.priority, model.alias, "vision" in model.capabilities) == (90, "fast", True)
    assert "priority" in model.overrides and "pricing_input" not in model.overrides  # only what changed

    await page.goto(f"{ui.url}/ui/models/new")
    await page.get_by_label("The provider's model id").fill("my-finetune")
    await page.get_by_label("Input price per 1M tokens (USD)").fill("-1")
    await page.get_by_role("button", name="Add model").click()
    await expect(page.locator("#n-pricing_input-error")).to_be_visible()
    await expect(page.get_by_label("The provider's model id")).to_have_value("my-finetune")  # kept
    await page.get_by_label("Input price per 1M tokens (USD)").fill("0.5")
    await page.get_by_role("button", name="Add model").click()
    await expect(page).to_have_url(re.compile(r"/ui/models/detail\?id=sim%2Fmy-finetune$"))
    assert (await ui.container.models.get("sim/my-finetune")).pricing_input == 0.5


async def test_an_agents_bulk_actions_priority_override_and_audit_log(ui: Ui) -> None:
    await ui.add_simulator()
    page = await ui.signed_in("ann", "acme", "tenant_admin")
    await page.get_by_label("Id (optional slug)").fill("bot")
    await page.get_by_label("Name").fill("Bot")
    await page.get_by_role("button", name="Create agent").click()

    await page.get_by_label("Tier").select_option("premium")  # the add-models list, filtered
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#add-models")).to_contain_text("No other enabled catalog model")
    await page.get_by_label("Tier").select_option("free")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#add-models input[type=checkbox]")).to_have_count(3)

    await page.get_by_role("button", name="Enable all free").click()  # the simulator's are free
    await expect(page.get_by_role("heading", name=re.compile(r"\(3 enabled\)"))).to_be_visible()
    await page.get_by_label("priority override of sim/gpt-4o-mini").fill("101")
    await (
        page.locator("#agent-model-list tr", has_text="sim/gpt-4o-mini")
        .get_by_role("button", name="Set")
        .click()
    )
    await expect(page.get_by_role("alert")).to_contain_text("100")
    await page.get_by_label("priority override of sim/gpt-4o-mini").fill("95")
    await (
        page.locator("#agent-model-list tr", has_text="sim/gpt-4o-mini")
        .get_by_role("button", name="Set")
        .click()
    )
    await expect(page.get_by_label("priority override of sim/gpt-4o-mini")).to_have_value("95")
    await expect(page.locator("#audit")).to_contain_text("ann")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Disable all").click()
    await expect(page.get_by_role("heading", name=re.compile(r"\(0 enabled\)"))).to_be_visible()
    snapshot = ui.container.snapshots.current
    assert not snapshot.agent_models.get(("acme", "bot"))  # routing sees none enabled


async def test_keys_are_revoked_models_bulk_disabled_and_screens_fit_a_narrow_window(ui: Ui) -> None:
    await ui.add_simulator()
    ann = await ui.signed_in("ann", "acme", "tenant_admin")
    await ann.get_by_label("Id (optional slug)").fill("bot")
    await ann.get_by_label("Name").fill("Bot")
    await ann.get_by_role("button", name="Create agent").click()
    await ann.get_by_role("button", name="Create key").click()
    key = (await ann.locator("#new-key").text_content() or "").strip()
    ann.once("dialog", lambda dialog: dialog.accept())
    await ann.locator("#keys").get_by_role("button", name="Revoke").click()
    await expect(ann.locator("#keys")).to_contain_text("revoked")
    async with httpx.AsyncClient(base_url=ui.url) as http:  # refused at once
        resp = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 401 and "revoked" in resp.text

    root = await ui.signed_in("root", "platform", "platform_admin")
    await root.goto(f"{ui.url}/ui/models?q=gpt-4o")
    await expect(root.locator("#model-count")).to_contain_text("2 models")
    root.once("dialog", lambda dialog: dialog.accept())
    await root.get_by_role("button", name="Disable all 2 matching").click()
    await expect(root.locator("#bulk-result")).to_contain_text("2 of 2 models disabled")
    models = ui.container.models
    assert (
        not (await models.get("sim/gpt-4o")).is_enabled
        and not (await models.get("sim/gpt-4o-mini")).is_enabled
    )
    assert (await models.get("sim/text-embedding-3-small")).is_enabled  # not matched: untouched

    for page, paths in (
        (root, ("/ui/providers", "/ui/models", "/ui/routing")),
        (ann, ("/ui/agents/bot", "/ui/dashboard", "/ui/spend", "/ui/records", "/ui/playground")),
    ):
        for width in (1024, 800):  # a narrow laptop window, and narrower
            await page.set_viewport_size({"width": width, "height": 800})
            for path in paths:
                await page.goto(f"{ui.url}{path}")
                overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{path} at {width} px scrolls sideways by {overflow} px"
