"""The README's walkthroughs run verbatim, in order, against a fresh `turnout serve` (the server
`make run` starts) so they can never drift from the code.

Every ```sh and ```python block runs, except one preceded by ``<!-- docs-test: skip (why) -->``.
Shell blocks run in one bash session (variables carry over, every assignment is exported); a Python
block runs in the project's interpreter with that environment. The only edits are the ones a reader
on this machine would make: the gateway's and the simulator's ports (8080, 8090) become free ones,
and ``curl`` fails on an HTTP error instead of printing it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?P<before>(?:^[^\n]*\n){0,2})^```(?P<lang>sh|python)\n(?P<code>.*?)^```$", re.M | re.S)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\b")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int


def walkthrough_blocks(text: str) -> list[Block]:
    """The README's runnable blocks, in order."""
    blocks = []
    for match in BLOCK.finditer(text):
        if SKIP.search(match.group("before")):
            continue
        line = text.count("\n", 0, match.start("code")) + 1
        blocks.append(Block(match.group("lang"), match.group("code"), line))
    return blocks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _localised(code: str, port: int, sim_port: int) -> str:
    code = re.sub(r"(localhost|127\.0\.0\.1):8080", rf"\g<1>:{port}", code)
    code = re.sub(r"(--port |127\.0\.0\.1:)8090", rf"\g<1>{sim_port}", code)
    return re.sub(r"\bcurl -s\b", "curl -sS --fail-with-body", code)


def _script(blocks: list[Block], port: int, sim_port: int) -> str:
    """One bash script: shell blocks as they are, Python blocks through the venv's interpreter."""
    parts = ["set -euo pipefail", "set -a"]
    for block in blocks:
        code = _localised(block.code, port, sim_port)
        parts.append(f"echo '--- README.md line {block.line} ({block.lang})'")
        if block.lang == "sh":
            parts.append(code)
        else:
            parts.append(f"{shlex.quote(sys.executable)} - <<'PYTHON_BLOCK'\n{code}PYTHON_BLOCK")
    return "\n".join(parts) + "\n"


def test_the_readme_has_walkthroughs_to_run() -> None:
    blocks = walkthrough_blocks(README.read_text())
    assert {b.lang for b in blocks} == {"sh", "python"}
    assert any("simulate" in b.code for b in blocks) and any("OpenAI(" in b.code for b in blocks)


def test_the_readme_walkthroughs_run_verbatim(tmp_path: Path) -> None:
    port, sim_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")},
        "XDG_DATA_HOME": str(tmp_path / "xdg"),  # a fresh user: nothing configured, nothing stored
        "TURNOUT_TASK_CLASSIFIER": "off",
    }
    server = subprocess.Popen(  # what `make run` runs
        [str(Path(sys.executable).with_name("turnout")), "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    walk = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "turnout serve did not start"
            time.sleep(0.2)
        script = _script(walkthrough_blocks(README.read_text()), port, sim_port)
        log = tmp_path / "walkthrough.log"  # a file, not a pipe: the background simulator keeps it open
        with log.open("w") as sink:
            walk = subprocess.Popen(
                ["bash", "-c", script], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            walk.wait(timeout=100)
        out = log.read_text()
        assert walk.returncode == 0, f"a README walkthrough failed:\n{out[-4000:]}"
        assert '"object":"chat.completion"' in out or "ChatCompletion(" in out, out[-2000:]
        assert "Message(" in out, "the Anthropic SDK call printed its answer"
        assert '"group_by":["agent","day"]' in out and '"cost_usd"' in out, "the spend report answered"
        assert "model,calls,prompt_tokens" in out and "Spend, start to now" in out, "spend as CSV and table"
        assert '"is_self_hosted":true' in out and "created provider groq" in out, "providers from templates"
    finally:
        for proc in (walk, server):
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the walkthrough's background simulator too
                except ProcessLookupError:
                    pass
        server.wait(timeout=30)
