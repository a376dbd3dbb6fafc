"""Provider simulator: a local upstream speaking the OpenAI, OpenRouter, Azure OpenAI, Anthropic and
Ollama wire formats, with configurable latency, token pacing and injected faults (see :mod:`.faults`
for the spec syntax, :mod:`.server` for the control routes and :mod:`.mounts` for where each
provider type lives)."""

from __future__ import annotations

from turnout.simulator.config import SimulatorConfig
from turnout.simulator.faults import FAULT_HEADER, Fault
from turnout.simulator.server import SimRequest, Simulator, Stats

__all__ = ["FAULT_HEADER", "Fault", "SimRequest", "Simulator", "SimulatorConfig", "Stats"]
