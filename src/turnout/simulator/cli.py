"""``turnout simulate``: run the provider simulator from the command line.

Mount it in the main CLI (``src/turnout/cli.py``)::

    from turnout.simulator.cli import simulate

    app.command("simulate")(simulate)

It also runs alone: ``python -m turnout.simulator --port 8090``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from typing import Annotated

import typer

from turnout.simulator.config import SimulatorConfig
from turnout.simulator.server import Simulator


def simulate(
    port: Annotated[int, typer.Option(help="port to listen on")] = 8090,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="wait before the first response byte")] = 0,
    tokens_per_second: Annotated[
        float, typer.Option(help="pace of streamed tokens (0 = as fast as possible)")
    ] = 0,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "--models", "-m", help="model to list (repeat or comma-separate)"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="key clients must send", envvar="TURNOUT_SIM_API_KEY")
    ] = None,
    reply_tokens: Annotated[int, typer.Option(help="words in each generated reply")] = 16,
) -> None:
    """Run a local fake OpenAI / OpenRouter / Azure / Anthropic / Ollama upstream with injectable faults."""
    names = [m.strip() for entry in models or () for m in entry.split(",") if m.strip()]
    config = SimulatorConfig(
        latency_ms=latency_ms,
        tokens_per_second=tokens_per_second,
        api_key=api_key,
        models=names or None,
        reply_tokens=reply_tokens,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(_serve(config, host, port))
    else:
        uvloop.run(_serve(config, host, port))


async def _serve(config: SimulatorConfig, host: str, port: int) -> None:
    sim = Simulator(config)
    url = await sim.start(host, port)
    gc.collect()
    gc.freeze()  # like the gateway: start-up objects leave the collector's scans (shorter pauses)
    typer.echo(f"Provider simulator on {url}")
    typer.echo(f"  OpenAI:     base_url={url}/v1      (chat/completions, embeddings, models)")
    typer.echo(f"  OpenRouter: base_url={url}/api/v1  (chat/completions, embeddings, models)")
    typer.echo(f"  Azure:      {url}/openai           (deployments/<model>/..., models; api-key)")
    typer.echo(f"  Anthropic:  base_url={url}         (v1/messages, v1/models)")
    typer.echo(f"  Ollama:     {url}/api              (chat, embed, tags)")
    typer.echo(
        f"  Bedrock:    {url}                  (model/<id>/converse[-stream], foundation-models; SigV4 "
        f"with {config.aws_access_key_id} / {config.aws_secret_access_key}, {config.aws_region})"
    )
    typer.echo(
        f"  Control:   {url}/_sim/faults  /_sim/stats  /_sim/config   header x-sim-fault: <kind>[:arg]"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
