"""Secrets never reach logs; provider URLs on metadata addresses are refused."""

from __future__ import annotations

import pytest
import structlog

from turnout.errors import InvalidRequest
from turnout.logs import configure_logging
from turnout.net.ssrf import check_api_base, is_blocked_address


def test_logs_redact_keys_tokens_and_sensitive_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    log = structlog.get_logger("t")
    log.info(
        "provider_call",
        api_key="sk-abcdefghijklmnop",
        headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "Accept": "json"},
        note="upstream said: Incorrect API key provided: sk-live-1234567890abcdef",
    )
    out = capsys.readouterr().err
    assert "sk-abcdefghijklmnop" not in out and "sk-live-1234567890abcdef" not in out
    assert "eyJhbGciOiJIUzI1NiJ9" not in out
    assert out.count("[REDACTED]") >= 3 and '"Accept": "json"' in out


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fe80::1]/v1",
    ],
)
def test_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_api_base(url, allow_private=False)
    assert info.value.param == "api_base"
    assert check_api_base(url, allow_private=True) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434",
        "http://10.0.0.5:8000/v1",
        "https://openrouter.ai/api/v1/",
        "http://localhost:8000",
    ],
)
def test_local_and_public_addresses_are_allowed(url: str) -> None:
    assert check_api_base(url, allow_private=False) == url.rstrip("/")


def test_blocked_address_detection() -> None:
    assert is_blocked_address("169.254.1.1") and is_blocked_address("fd00:ec2::254")
    assert not is_blocked_address("192.168.1.1") and not is_blocked_address("not-an-ip")


def test_a_urls_password_or_token_is_masked_for_logs() -> None:
    from turnout.redaction import url_for_logs

    assert url_for_logs("nats://turnout:s3cret@nats:4222") == "nats://turnout:***@nats:4222"
    assert url_for_logs("nats://tok3n@a:4222,nats://b:4222/x") == "nats://***@a:4222,nats://b:4222/x"
    assert url_for_logs("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert url_for_logs("nats://nats:4222") == "nats://nats:4222"
