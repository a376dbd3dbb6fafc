"""`turnout providers templates` and `turnout providers from-template` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from turnout.providers.registry import PROVIDER_TYPES

TURNOUT = str(Path(sys.executable).with_name("turnout"))
KEY = "gsk-cli-Tmpl8eR4tY6uI2oP0a"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")},
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "TURNOUT_DATA_DIR": str(tmp_path / "data"),
        "TURNOUT_LOG_LEVEL": "WARNING",
        "GROQ_KEY": KEY,
        "AWS_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
        "COLUMNS": "250",
    }


async def _turnout(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        TURNOUT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_templates_are_listed_and_a_provider_is_added_from_one(env: dict[str, str]) -> None:
    code, out = await _turnout(env, "providers", "templates")
    assert code == 0, out
    for expected in ("groq", "https://api.groq.com/openai/v1", "huggingface", "0 (self-hosted)", "api_base"):
        assert expected in out, out

    code, out = await _turnout(env, "providers", "from-template", "groq", "--api-key-env", "GROQ_KEY")
    assert code == 0, out
    assert "created provider groq (custom, https://api.groq.com/openai/v1; prices from groq" in out, out
    assert "secret/llm/groq" in out and KEY not in out
    code, out = await _turnout(env, "providers", "list")
    assert code == 0 and "https://api.groq.com/openai/v1" in out, out

    code, out = await _turnout(env, "providers", "from-template", "vllm", "--id", "gpu",
                               "--api-base", "http://127.0.0.1:9000")  # fmt: skip
    assert code == 0 and "http://127.0.0.1:9000/v1; prices 0, self-hosted" in out, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("skynet",), "no provider template 'skynet'"),
        (("azure", "--api-key-env", "GROQ_KEY"), "api_base: field required"),
        (("openai", "--region", "us-east-1"), "takes no region"),
        (("openai", "--api-key-env", "UNSET_VAR"), "UNSET_VAR is not set"),
        (("openai", "--credential-env", "api_key"), "FIELD=VAR"),
    ],
)
async def test_bad_template_input_exits_2_with_one_line(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    code, out = await _turnout(env, "providers", "from-template", *args)
    assert code == 2 and message in out and "Traceback" not in out, out


async def test_bedrock_from_the_cli_takes_a_region_and_credentials_from_the_environment(
    env: dict[str, str],
) -> None:
    if "bedrock" not in PROVIDER_TYPES:
        pytest.skip("provider type 'bedrock' is not registered in this build")
    code, out = await _turnout(env, "providers", "from-template", "bedrock", "--region", "us-west-2",
                               "--credential-env", "aws_access_key_id=AWS_ID",
                               "--credential-env", "aws_secret_access_key=AWS_SECRET")  # fmt: skip
    assert code == 0, out
    assert "https://bedrock-runtime.us-west-2.amazonaws.com; prices from aws" in out, out
    assert env["AWS_SECRET"] not in out
