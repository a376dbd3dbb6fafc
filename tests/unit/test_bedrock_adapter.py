"""The Bedrock provider's transport: Converse URLs, SigV4 signing (botocore's signer), the region,
the control-plane models URL and the ListFoundationModels parser."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from turnout.catalog.fetch import ProviderConnection, list_request, models_url
from turnout.modelinfo.discovered import UnexpectedPayload
from turnout.providers.base import ChatAdapter, ProviderError, Target
from turnout.providers.bedrock import models
from turnout.providers.bedrock.adapter import BedrockAdapter, model_url, region_of, runtime_base
from turnout.providers.bedrock.spec import SPEC
from turnout.providers.credentials import Credentials

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/bedrock/aws4_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=[0-9a-f]{64}"
)
BODY: Any = {"model": "bedrock/claude", "messages": [{"role": "user", "content": "Hi"}]}


def target(api_base: str = runtime_base("eu-west-1"), **fields: str) -> Target:
    credentials = Credentials({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET, **fields})
    return Target("bedrock/claude", CLAUDE, "aws", "bedrock", api_base, credentials)


def test_the_spec() -> None:
    adapter: ChatAdapter = SPEC.adapter
    assert isinstance(adapter, BedrockAdapter) and SPEC.sign is not None and SPEC.price_id == "aws"
    assert SPEC.credentials.problem({"aws_access_key_id": KEY_ID}) == (
        "aws_secret_access_key",
        "field required",
    )
    assert SPEC.credentials.problem({"api_key": "k"}) is not None
    assert SPEC.credentials.problem({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}) is None


def test_converse_urls_quote_the_model_id() -> None:
    base = "https://bedrock-runtime.us-west-2.amazonaws.com/"
    assert model_url(base, CLAUDE, "converse") == (
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude"
    assert (
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude/"
        in (model_url(base, arn, "converse-stream"))
    )


@pytest.mark.parametrize("stream", [False, True])
def test_chat_requests_are_signed_with_sigv4(stream: bool) -> None:
    request = BedrockAdapter().chat_request(target(), BODY, stream=stream)
    operation = "converse-stream" if stream else "converse"
    # the URL as aiohttp sends it (yarl writes ":" bare), which is the path the signature covers
    assert request.url == f"https://bedrock-runtime.eu-west-1.amazonaws.com/model/{CLAUDE}/{operation}"
    auth = AUTH.fullmatch(request.headers["Authorization"])
    assert auth is not None and auth["key"] == KEY_ID and auth["region"] == "eu-west-1"
    assert auth["headers"] == "content-type;host;x-amz-date"
    assert re.fullmatch(r"\d{8}T\d{6}Z", request.headers["X-Amz-Date"])
    assert request.headers["Accept"] == (
        "application/vnd.amazon.eventstream" if stream else "application/json"
    )
    assert SECRET not in str(request.headers) and b"Hi" in request.body


def test_session_token_and_region_field() -> None:
    request = BedrockAdapter().chat_request(
        target("https://proxy.test/bedrock", aws_session_token="FQoGZXIvYXdzE", region="ap-south-1"),
        BODY,
        stream=False,
    )
    assert request.headers["X-Amz-Security-Token"] == "FQoGZXIvYXdzE"
    auth = AUTH.fullmatch(request.headers["Authorization"])
    assert auth is not None and auth["region"] == "ap-south-1"
    assert auth["headers"] == "content-type;host;x-amz-date;x-amz-security-token"
    assert request.url.startswith("https://proxy.test/bedrock/model/")


def test_signing_is_reproducible_by_botocore() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as AwsCredentials

    request = BedrockAdapter().chat_request(target(), BODY, stream=False)
    headers = {"Content-Type": request.headers["Content-Type"], "X-Amz-Date": request.headers["X-Amz-Date"]}
    aws = AWSRequest("POST", request.url, headers, request.body)
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(AwsCredentials(KEY_ID, SECRET), "bedrock", "eu-west-1")
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    assert request.headers["Authorization"].endswith(f"Signature={expected}")


def test_without_keys_requests_go_unsigned() -> None:
    bare = Target("bedrock/claude", CLAUDE, "aws", "bedrock", runtime_base("us-east-1"))
    request = BedrockAdapter().chat_request(bare, BODY, stream=False)
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://bedrock-runtime.eu-central-1.amazonaws.com/model/x/converse", "eu-central-1"),
        ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com/", "us-gov-west-1"),
        ("https://vpce-0a1b.bedrock-runtime.ap-northeast-1.vpce.amazonaws.com/", "ap-northeast-1"),
        ("https://bedrock.cn-north-1.amazonaws.com.cn/foundation-models", "cn-north-1"),
        ("http://127.0.0.1:8090/model/x/converse", "us-east-1"),
    ],
)
def test_region_from_the_host(url: str, region: str) -> None:
    assert region_of(url, Credentials()) == region
    assert region_of(url, Credentials({"region": "sa-east-1"})) == "sa-east-1"


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "https://bedrock.us-east-1.amazonaws.com/foundation-models",
        ),
        (
            "https://bedrock-runtime-fips.us-east-1.amazonaws.com/",
            "https://bedrock-fips.us-east-1.amazonaws.com/foundation-models",
        ),
        (
            "https://bedrock-runtime.cn-north-1.amazonaws.com.cn",
            "https://bedrock.cn-north-1.amazonaws.com.cn/foundation-models",
        ),
        ("http://127.0.0.1:8090", "http://127.0.0.1:8090/foundation-models"),
        ("https://proxy.test/aws/", "https://proxy.test/aws/foundation-models"),
    ],
)
def test_models_url_is_on_the_control_plane(api_base: str, url: str) -> None:
    assert models_url(ProviderConnection("bedrock", api_base))[0] == url


def test_models_requests_are_signed_too() -> None:
    credentials = Credentials({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET})
    request = list_request(SPEC, "https://bedrock.us-west-2.amazonaws.com/foundation-models", {}, credentials)
    auth = AUTH.fullmatch(request.headers["Authorization"])
    assert auth is not None and auth["region"] == "us-west-2" and auth["headers"] == "host;x-amz-date"
    assert request.headers["Accept"] == "application/json"


def test_embeddings_are_not_supported() -> None:
    with pytest.raises(ProviderError) as caught:
        BedrockAdapter().embeddings_request(target(), {"model": "bedrock/titan", "input": "x"})
    assert caught.value.status_code == 400 and caught.value.code == "unsupported_operation"


def _summary(model_id: str, **changes: Any) -> dict[str, Any]:
    entry = {
        "modelId": model_id,
        "modelName": "A model",
        "providerName": "Anthropic",
        "inputModalities": ["TEXT", "IMAGE"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }
    return {**entry, **changes}


def test_model_list_keeps_active_on_demand_text_models() -> None:
    payload = {
        "modelSummaries": [
            _summary(CLAUDE, modelName="Claude 3.5 Haiku"),
            _summary("meta.llama3-1-8b-instruct-v1:0", inputModalities=["TEXT"]),
            _summary("amazon.titan-embed-text-v2:0", outputModalities=["EMBEDDING"]),
            _summary("stability.sd3-large-v1:0", outputModalities=["IMAGE"]),
            _summary("anthropic.claude-v2", modelLifecycle={"status": "LEGACY"}),
            _summary(
                "anthropic.claude-3-7-sonnet-20250219-v1:0", inferenceTypesSupported=["INFERENCE_PROFILE"]
            ),
            {"modelName": "no id"},
            "junk",
        ]
    }
    found, cursor = models.parse_page(payload, "aws")
    assert cursor is None and [m.external_id for m in found] == [CLAUDE, "meta.llama3-1-8b-instruct-v1:0"]
    claude, llama = found
    assert claude.display_name == "Claude 3.5 Haiku" and claude.model_type == "chat"
    assert claude.pricing_input == Decimal("0.8") and claude.ctx_length == 200_000  # genai-prices' aws list
    assert {"vision", "function_calling", "long_context"} <= set(claude.capabilities)
    assert "vision" not in llama.capabilities and "function_calling" in llama.capabilities
    with pytest.raises(UnexpectedPayload):
        models.parse_page({"models": []}, "aws")
