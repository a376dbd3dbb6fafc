"""``bedrock``: AWS Bedrock through the Converse API, SigV4-signed. Models are listed by the control
plane's ListFoundationModels (``bedrock.{region}`` next to ``bedrock-runtime.{region}``), priced
from genai-prices' ``aws`` list. The credential is an AWS access key pair (plus a session token
for temporary credentials, and the region when the host does not say it)."""

from __future__ import annotations

from urllib.parse import urlsplit

from turnout.providers.bedrock import models
from turnout.providers.bedrock.adapter import BedrockAdapter, sign_sigv4
from turnout.providers.spec import CredentialSchema, ProviderSpec, WireFormat


def models_url(api_base: str) -> str:
    """``https://bedrock.X/foundation-models`` for a runtime host ``bedrock-runtime.X`` on AWS;
    another host (a proxy, the simulator) serves both under ``api_base``."""
    base = api_base.rstrip("/")
    parts = urlsplit(base)
    host = parts.hostname or ""
    if "bedrock-runtime" in host and host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        netloc = parts.netloc.replace("bedrock-runtime", "bedrock", 1)
        return f"{parts.scheme}://{netloc}/foundation-models"
    return f"{base}/foundation-models"


SPEC = ProviderSpec(
    type="bedrock",
    display_name="AWS Bedrock",
    adapter=BedrockAdapter(sign=sign_sigv4),
    models=WireFormat("bedrock", models.parse_page),
    models_url=models_url,
    price_id="aws",
    credentials=CredentialSchema(
        fields=("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region"),
        required=("aws_access_key_id", "aws_secret_access_key"),
    ),
)
