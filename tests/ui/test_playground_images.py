"""An image attached in the playground, where a model that takes images may answer: the attach
control follows the chosen model, and "auto" routes the image to a vision model."""

from __future__ import annotations

import base64

import httpx
from playwright.async_api import expect

from tests.ui.conftest import Ui

PNG = base64.b64decode(  # a 1x1 transparent PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def test_an_attached_image_goes_to_a_model_that_takes_images(ui: Ui) -> None:
    root = ui.headers("root", "platform", "platform_admin")
    ann = ui.headers("ann", "acme", "tenant_admin")
    await ui.add_simulator()
    async with httpx.AsyncClient(base_url=ui.url) as http:
        for model, caps in (("sim/gpt-4o", ["text", "vision"]), ("sim/gpt-4o-mini", ["text"])):
            edit = await http.patch(
                f"/api/v2/admin/models/{model}", json={"capabilities": caps}, headers=root
            )
            assert edit.status_code == 200, edit.text
        agent = {"id": "eye", "name": "Eye"}
        assert (await http.post("/api/v2/agents", json=agent, headers=ann)).status_code == 201
        chosen = {"model_ids": ["sim/gpt-4o", "sim/gpt-4o-mini"]}
        assert (await http.post("/api/v2/agents/eye/models", json=chosen, headers=ann)).status_code < 300

    page = await ui.signed_in("una", "acme", "user")
    await expect(page).to_have_url(f"{ui.url}/ui/playground")
    await page.get_by_label("Model").select_option("sim/gpt-4o-mini")
    await expect(page.get_by_label("Attach an image")).to_be_hidden()  # this model takes no images
    await page.get_by_label("Model").select_option("auto")
    await expect(page.get_by_label("Attach an image")).to_be_visible()
    await page.get_by_label("Attach an image").set_input_files(
        files=[{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}]
    )
    await page.get_by_label("Message").fill("What is in this picture?")
    await page.get_by_role("button", name="Send").click()
    answer = page.locator(".bubble.assistant").first
    await expect(answer.locator(".meta")).to_contain_text("sim/gpt-4o ·")  # the vision model
    await expect(page.locator(".bubble.user").first).to_contain_text("[image: dot.png]")
    await answer.get_by_role("button", name="Why this model?").click()
    await expect(answer.locator(".why")).to_contain_text("needs vision")
