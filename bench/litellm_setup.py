"""Install and run the LiteLLM proxy (``litellm==1.109.1``) for ``bench/gateway.py``.

The proxy lives in its own venv (``bench/.litellm-venv``, gitignored) so it never touches the
project's dependencies. On this package index ``litellm[proxy]`` does not resolve: it pins a newer
``certifi`` and ``litellm-proxy-extras`` than are served. So the wheel goes in with ``--no-deps`` and
its base and ``proxy`` requirements follow, read from the wheel's own metadata, with those two
unpinned. ``python bench/litellm_setup.py`` installs it alone.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

from common import free_port
from gateway_procs import Proc, started

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".litellm-venv"
VERSION = "1.109.1"
UNPIN = {"certifi", "litellm-proxy-extras"}
STAMP = VENV / f".installed-{VERSION}"
MODEL = "bench-model"


def _pip(args: list[str], log: Path) -> None:
    cmd = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2500:]
        raise RuntimeError(f"pip install failed ({done.returncode}):\n{tail}")


def requirements(wheel: Path, extra: str = "proxy") -> list[str]:
    """The wheel's base and ``extra`` requirements for this interpreter, ``UNPIN`` names unpinned."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    out: list[str] = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is not None:
            base = req.marker.evaluate({"extra": ""})
            if not base and not req.marker.evaluate({"extra": extra}):
                continue
        req.marker = None
        if req.name.lower() in UNPIN:
            req.specifier = type(req.specifier)("")
        out.append(str(req))
    return sorted(set(out))


def install(log: Path) -> Path:
    """Make sure ``bench/.litellm-venv`` holds litellm ``VERSION`` and its proxy extras; its ``litellm``."""
    exe = VENV / "bin" / "litellm"
    if STAMP.exists() and exe.exists():
        return exe
    log.parent.mkdir(parents=True, exist_ok=True)
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    wheels = VENV / "wheels"
    wheels.mkdir(exist_ok=True)
    dl = [str(VENV / "bin" / "python"), "-m", "pip", "download", "-q", "--no-deps", f"litellm=={VERSION}"]
    with log.open("ab") as out:
        if subprocess.run([*dl, "-d", str(wheels)], stdout=out, stderr=subprocess.STDOUT).returncode:
            raise RuntimeError(f"cannot download litellm=={VERSION}:\n{log.read_text()[-2000:]}")
    wheel = next(wheels.glob(f"litellm-{VERSION}-*.whl"))
    _pip(["--no-deps", str(wheel)], log)
    _pip(requirements(wheel), log)
    STAMP.write_text(VERSION)
    return exe


def write_config(tmp: Path, api_base: str, api_key: str) -> Path:
    """A proxy config routing ``MODEL`` to ``openai/gpt-4o-mini`` at ``api_base``."""
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f'      api_base: "{api_base}"\n'
        f'      api_key: "{api_key}"\n'
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  set_verbose: false\n"
        "  telemetry: false\n"
    )
    return config


def proxy_env(master_key: str) -> dict[str, str]:
    """The proxy's environment: no price-map download, no telemetry, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "LITELLM_MASTER_KEY": master_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "PATH": f"{VENV / 'bin'}:{env.get('PATH', '')}",
        }
    )
    return env


def command(exe: Path, config: Path, port: int, prefix: list[str]) -> list[str]:
    """``litellm`` with one worker (1.109.1 serves it in-process with uvicorn)."""
    return [
        *prefix,
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


@contextmanager
def proxy(tmp: Path, api_base: str, api_key: str, prefix: list[str]) -> Iterator[tuple[Proc, str]]:
    """Install if needed, then run the proxy in front of ``api_base``; yields it and its master key."""
    exe = install(ROOT / "bench" / "results" / "litellm-install.log")
    key = "sk-bench-" + secrets.token_hex(16)  # LiteLLM refuses the documented sk-1234
    config = write_config(tmp, api_base, api_key)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "litellm.log"
    with started(
        "litellm",
        command(exe, config, port, prefix),
        proxy_env(key),
        log,
        f"{url}/health/liveliness",
        timeout_s=300,
    ) as popen:
        yield Proc("litellm", popen, url, log), key


if __name__ == "__main__":
    print(install(ROOT / "bench" / "results" / "litellm-install.log"))
