"""The Providers screen's template buttons come from the catalog's templates: one click fills the
form, pricing source and self-hosting included, and the provider is created as the template says."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.ui.conftest import Ui


async def test_a_template_button_fills_the_form_with_its_pricing_source(ui: Ui) -> None:
    page = await ui.signed_in("root", "platform", "platform_admin")
    await expect(page).to_have_url(re.compile(r"/ui/providers$"))
    await page.get_by_role("button", name="Groq", exact=True).click()
    await expect(page.get_by_label("Id (slug)")).to_have_value("groq")
    await expect(page.get_by_label("Base URL")).to_have_value("https://api.groq.com/openai/v1")
    await expect(page.get_by_label("Type")).to_have_value("custom")
    await page.get_by_label(re.compile("^API key")).fill("gsk-ui-Templ4teKey")
    await page.get_by_role("button", name="Add provider").click()
    await expect(page).to_have_url(re.compile(r"/ui/providers/groq$"))

    async with httpx.AsyncClient(
        base_url=ui.url, headers=ui.headers("root", "platform", "platform_admin")
    ) as http:
        out = (await http.get("/api/v2/admin/providers/groq")).json()
    assert (out["provider_type"], out["pricing_source"], out["self_hosted"]) == ("custom", "groq", False)

    await page.goto(f"{ui.url}/ui/providers")
    await page.get_by_role("button", name="vLLM (local)").click()  # a self-hosted one resets both
    await expect(page.get_by_label("Base URL")).to_have_value("http://localhost:8000/v1")
    assert await page.locator("#p-price_id").input_value() == ""
    assert await page.locator("#p-self_hosted").input_value() == "true"
