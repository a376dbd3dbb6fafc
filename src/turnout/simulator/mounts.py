"""Where each provider type finds its wire format on the simulator: the ``api_base`` suffix a
Turnout provider of that type is given, and which routes list its models. A provider type the
simulator does not speak yet has no entry; its contract test says so."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mount:
    path: str  # appended to the simulator's URL to make the provider's api_base
    routes: str  # the Simulator attribute holding the routes that list its models


MOUNTS: dict[str, Mount] = {
    "openai": Mount("/v1", "openai"),
    "custom": Mount("/v1", "openai"),
    "openrouter": Mount("/api/v1", "openrouter"),
    "azure": Mount("", "azure"),
    "anthropic": Mount("", "anthropic"),
    "ollama": Mount("", "ollama"),
    "gemini": Mount("", "gemini"),  # everything under /v1beta
    "bedrock": Mount("", "bedrock"),  # runtime and control plane on one host
}
