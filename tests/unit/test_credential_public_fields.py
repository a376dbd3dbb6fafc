"""A credential's region is configuration, not a secret: it must not be scrubbed from every log line
and error of the process (a stored Bedrock credential once turned each "us-east-1" into [REDACTED])."""

from __future__ import annotations

from turnout.providers.credentials import Credentials
from turnout.redaction import KNOWN_SECRETS, redact_text
from turnout.secrets.base import remember


def test_region_is_not_a_secret_but_the_keys_are() -> None:
    fields = {"aws_access_key_id": "AKIAEXAMPLEPUBLICF1", "aws_secret_access_key": "s3cr3t/K3y+Fields1",
              "region": "eu-west-3"}  # fmt: skip
    credentials = Credentials(fields)
    assert "eu-west-3" not in credentials.secrets
    assert {"AKIAEXAMPLEPUBLICF1", "s3cr3t/K3y+Fields1"} <= set(credentials.secrets)
    remember(fields)
    try:
        text = redact_text("AccessDenied for AKIAEXAMPLEPUBLICF1 in eu-west-3", *credentials.secrets)
        assert "eu-west-3" in text and "AKIAEXAMPLEPUBLICF1" not in text
    finally:
        for value in fields.values():
            KNOWN_SECRETS.discard(value)
