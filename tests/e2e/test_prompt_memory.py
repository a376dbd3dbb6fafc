"""The prompt memory through the gateway (TURNOUT_PROMPT_MEMORY): answers rated through the
feedback API teach routing which model serves which shape of prompt within one task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.gateway_env import gateway
from turnout.routing.classifier import TaskClassifier

pytestmark = pytest.mark.skipif(
    not TaskClassifier.available(), reason="needs the 'classifier' extra (wordllama)"
)
CHEAP, STRONG = "oai/gpt-4o-mini", "oai/gpt-4o"


def short(n: int) -> str:
    return f"What is the capital of country number {n}?"


def few_shot(n: int) -> str:
    examples = "".join(f"Q: What is {a} plus {a + 1}?\nA: {2 * a + 1}\n" for a in range(n % 4 + 3))
    return f"Answer like the examples.\n{examples}Q: Which river flows through city number {n}?\nA:"


async def _route_and_rate(tmp_path: Path, memory: bool) -> dict[str, list[str]]:
    """100 calls of one task, short questions and few-shot prompts in turn; a short question's
    answer is rated 1 from the cheap model, a few-shot one's from the strong model. The picks of
    each shape, in order. (With 60, about one run in 25 never tried the strong model on a few-shot
    prompt early enough for the memory to learn it by the last ten.)"""
    picks: dict[str, list[str]] = {"short": [], "few_shot": []}
    async with gateway(tmp_path, prompt_memory=memory) as env:
        admin = {"Authorization": f"Bearer {env.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
        user = {"Authorization": f"Bearer {env.container.jwt.mint('uma', 'acme', ['user'])}"}
        agent = (await env.http.post("/api/v2/agents", json={"id": "qa", "name": "QA"}, headers=admin)).json()
        await env.http.post(
            f"/api/v2/agents/{agent['id']}/models", json={"model_ids": [CHEAP, STRONG]}, headers=admin
        )
        key = (await env.http.post(f"/api/v2/agents/{agent['id']}/keys", json={}, headers=admin)).json()
        for n in range(100):
            shape = "short" if n % 2 == 0 else "few_shot"
            text = short(n) if shape == "short" else few_shot(n)
            body: dict[str, Any] = {
                "model": "auto",
                "task_type": "qa",
                "messages": [{"role": "user", "content": text}],
            }
            answer = await env.http.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key['key']}"}
            )
            assert answer.status_code == 200, answer.text
            model = answer.headers["x-turnout-model"]
            picks[shape].append(model)
            good = CHEAP if shape == "short" else STRONG
            rated = await env.http.post(
                f"/api/v2/chat/messages/{answer.headers['x-turnout-message-id']}/feedback",
                json={"rating": 1.0 if model == good else 0.0},
                headers=user,
            )
            assert rated.status_code == 200, rated.text
    return picks


async def test_rated_prompts_teach_routing_two_shapes_of_one_task(tmp_path: Path) -> None:
    """With the memory, the last ten prompts of each shape go mostly to the model that answers that
    shape; without it (the same calls and ratings), one task's estimates cannot tell them apart."""
    with_memory = await _route_and_rate(tmp_path / "on", memory=True)
    late_right = with_memory["short"][-10:].count(CHEAP) + with_memory["few_shot"][-10:].count(STRONG)
    assert late_right >= 16, with_memory
    without = await _route_and_rate(tmp_path / "off", memory=False)
    late_right_without = without["short"][-10:].count(CHEAP) + without["few_shot"][-10:].count(STRONG)
    assert late_right_without <= 14, without
