"""Transport of AWS Bedrock's Converse API: ``POST {runtime}/model/{modelId}/converse`` and
``/converse-stream``, every request signed with AWS Signature Version 4 (botocore's signer).

``api_base`` is the runtime endpoint, ``https://bedrock-runtime.{region}.amazonaws.com`` (or a VPC
endpoint or proxy in front of it). The credential holds ``aws_access_key_id`` and
``aws_secret_access_key``, optionally ``aws_session_token`` (temporary credentials) and ``region``;
the region signed for is that field, else the one in the host name, else ``us-east-1``.
The translation lives in :mod:`turnout.translate.bedrock` and :mod:`turnout.translate.bedrock_stream`.
Embeddings go through InvokeModel in a per-model format, not Converse: not supported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn
from urllib.parse import quote, urlsplit

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as AwsCredentials
from yarl import URL

from turnout.providers.base import ProviderError, Signer, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.translate.bedrock import (
    converse_to_openai_response,
    error_from_answer,
    openai_to_converse_request,
)
from turnout.translate.bedrock_stream import CONTENT_TYPE, BedrockStreamDecoder
from turnout.translate.errors import load_object
from turnout.translate.types import ChatRequest, Completion, EmbeddingsRequest, EmbeddingsResponse

SERVICE = "bedrock"  # the signing name of both the runtime and the control plane
DEFAULT_REGION = "us-east-1"
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")
_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


def runtime_base(region: str) -> str:
    """The default ``api_base`` of a region."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def region_of(url: str, credentials: Credentials) -> str:
    """The region to sign for: the credential's ``region``, else the host's, else ``us-east-1``."""
    region = credentials.get("region")
    if region:
        return region
    host = urlsplit(url).hostname or ""
    return next((label for label in host.split(".") if _REGION.fullmatch(label)), DEFAULT_REGION)


def sign_sigv4(request: UpstreamRequest, credentials: Credentials) -> None:
    """Sign ``request`` in place with SigV4 for service ``bedrock``.

    The URL is first put in the form aiohttp sends (yarl re-quotes it: ``%3A`` goes out as ``:``),
    so the signature covers the path AWS receives. The host, ``Content-Type`` and ``X-Amz-*``
    headers are signed; other headers may be changed on the way without breaking it. Without an
    access key and secret the request goes unsigned, and AWS answers that it is missing them.
    """
    access_key = credentials.get("aws_access_key_id")
    secret_key = credentials.get("aws_secret_access_key")
    if not access_key or not secret_key:
        return
    request.url = str(URL(request.url))
    signed = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
    aws = AWSRequest(method=request.method, url=request.url, data=request.body, headers=signed)
    token = credentials.get("aws_session_token")
    SigV4Auth(
        AwsCredentials(access_key, secret_key, token), SERVICE, region_of(request.url, credentials)
    ).add_auth(aws)
    for name in _SIGNATURE_HEADERS:
        value = aws.headers.get(name)
        if value is not None:
            request.headers[name] = value


def model_url(api_base: str, model_id: str, operation: str) -> str:
    """``{api_base}/model/{modelId}/{operation}``; the id quoted whole (an ARN holds ``/`` and ``:``)."""
    return f"{api_base.rstrip('/')}/model/{quote(model_id, safe='')}/{operation}"


class BedrockAdapter:
    """Adapter for ``bedrock`` providers (stateless); ``sign`` is SigV4 unless replaced."""

    def __init__(self, *, sign: Signer | None = sign_sigv4) -> None:
        self.sign = sign

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """None: Bedrock requests are authenticated by their signature."""
        return {}

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Canonical body -> ``converse`` (or ``converse-stream``, whose usage comes in ``metadata``)."""
        out = openai_to_converse_request(body)
        operation = "converse-stream" if stream else "converse"
        headers = {
            "Content-Type": "application/json",
            "Accept": CONTENT_TYPE if stream else "application/json",
        }
        url = model_url(target.api_base, target.external_id, operation)
        request = UpstreamRequest("POST", url, headers, orjson.dumps(out))
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """Converse answer -> canonical ``chat.completion`` (``model`` = catalog id)."""
        return converse_to_openai_response(load_object(payload, "Converse answer"), target.model_id)

    def stream_decoder(self, target: Target) -> BedrockStreamDecoder:
        """A fresh decoder for one ConverseStream event stream."""
        return BedrockStreamDecoder(target.model_id, secrets=target.credentials.secrets)

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Not through Converse: always a 400."""
        _no_embeddings()

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """Not through Converse: always a 400."""
        _no_embeddings()

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """Bedrock's ``{"message"}`` and ``x-amzn-errortype`` -> ProviderError (credential scrubbed)."""
        return error_from_answer(status, payload, headers, secrets=target.credentials.secrets)


def _no_embeddings() -> NoReturn:
    raise ProviderError(
        "embeddings are not supported for Bedrock providers",
        status=400,
        error_type="invalid_request_error",
        code="unsupported_operation",
        param="model",
    )
