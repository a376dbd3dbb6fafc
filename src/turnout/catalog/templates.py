"""Provider templates: well-known providers an admin registers with one call, by name.

A template is a declaration, not a provider type. It names a registered type
(``providers/registry.py``) and fills in what an admin would otherwise look up: the base URL, the
genai-prices provider its models are priced from, whether it is self-hosted, and where its keys
are made. :func:`provider_create` turns a template and the few things only the admin knows (a key,
a per-resource URL, a region) into the same ``ProviderCreate`` the normal create endpoint takes,
so validation (SSRF checks, the credential schema), secret storage and change notification stay
one code path (``ProviderService.create``).

A template whose type this build does not register (yet) is listed as unavailable and refuses to
create, so templates can be declared ahead of their adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from types import MappingProxyType

from pydantic import SecretStr, ValidationError

from turnout.catalog.providers import check_fields, given_fields
from turnout.catalog.schemas import ProviderCreate, ProviderFromTemplate, ProviderTemplateOut
from turnout.errors import InvalidRequest, NotFound, fields_message
from turnout.providers.registry import PROVIDER_TYPES, SPECS_BY_TYPE
from turnout.providers.spec import ProviderSpec

#: The placeholders a template's ``api_base`` may hold: each is a field of ``ProviderFromTemplate``.
PLACEHOLDERS = frozenset({"region"})


@dataclass(frozen=True, slots=True)
class ProviderTemplate:
    """One known provider. ``api_base`` is the default base URL, with ``{region}`` where the caller's
    region goes, or None when every account has its own URL (the caller must give ``api_base``);
    ``api_base_suffix`` is appended to a caller's URL that lacks it (a Hugging Face endpoint's URL
    without its ``/v1``). ``price_id`` is the genai-prices provider (None: guessed per model id)."""

    id: str
    display_name: str
    provider_type: str
    api_base: str | None
    price_id: str | None
    docs_url: str
    self_hosted: bool = False
    api_base_example: str | None = None
    api_base_suffix: str = ""
    note: str | None = None

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The ``{name}`` fields of the default URL, in order."""
        if self.api_base is None:
            return ()
        return tuple(name for _, name, _, _ in Formatter().parse(self.api_base) if name)

    @property
    def requires(self) -> tuple[str, ...]:
        """The parameters a caller must give: ``api_base`` when there is no default, else the
        default's placeholders (a region also goes into a credential that takes one)."""
        return ("api_base",) if self.api_base is None else self.placeholders

    @property
    def spec(self) -> ProviderSpec | None:
        """The registered spec of its type, or None when this build does not have that type."""
        return SPECS_BY_TYPE.get(self.provider_type)

    def stored_price_id(self) -> str | None:
        """The provider's ``price_id``: None when its type prices the same way (it follows the type)."""
        spec = self.spec
        if spec is not None and spec.price_id == self.price_id:
            return None
        return self.price_id


_T = ProviderTemplate

TEMPLATES: tuple[ProviderTemplate, ...] = (
    _T("openai", "OpenAI", "openai", "https://api.openai.com/v1", "openai",
       docs_url="https://platform.openai.com/api-keys"),
    _T("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", "anthropic",
       docs_url="https://console.anthropic.com/settings/keys"),
    _T("openrouter", "OpenRouter", "openrouter", "https://openrouter.ai/api/v1", "openrouter",
       docs_url="https://openrouter.ai/settings/keys"),
    _T("azure", "Azure OpenAI", "azure", None, "azure",
       docs_url="https://learn.microsoft.com/azure/ai-services/openai/quickstart",
       api_base_example="https://my-resource.openai.azure.com",
       note="api_base is your resource's endpoint (Azure portal: Keys and Endpoint)"),
    _T("gemini", "Google Gemini", "gemini", "https://generativelanguage.googleapis.com", "google",
       docs_url="https://aistudio.google.com/app/apikey"),
    _T("bedrock", "AWS Bedrock", "bedrock", "https://bedrock-runtime.{region}.amazonaws.com", "aws",
       docs_url="https://docs.aws.amazon.com/bedrock/latest/userguide/getting-started.html",
       note="credentials: aws_access_key_id and aws_secret_access_key; the region goes into the URL "
       "and, when the type's credential takes one, into the credential"),
    # OpenAI-compatible APIs are "custom", not "openai": the "openai" type prices every model from
    # OpenAI's list (Mistral's or Groq's models would sync unpriced); their price_id says whose list.
    _T("mistral", "Mistral", "custom", "https://api.mistral.ai/v1", "mistral",
       docs_url="https://console.mistral.ai/api-keys"),
    _T("groq", "Groq", "custom", "https://api.groq.com/openai/v1", "groq",
       docs_url="https://console.groq.com/keys"),
    _T("together", "Together AI", "custom", "https://api.together.xyz/v1", "together",
       docs_url="https://api.together.ai/settings/api-keys"),
    _T("deepseek", "DeepSeek", "custom", "https://api.deepseek.com/v1", "deepseek",
       docs_url="https://platform.deepseek.com/api_keys"),
    _T("huggingface", "Hugging Face Inference Endpoint", "custom", None, None,
       docs_url="https://huggingface.co/settings/tokens", self_hosted=True,
       api_base_example="https://my-endpoint.endpoints.huggingface.cloud",
       api_base_suffix="/v1",
       note="a dedicated endpoint (TGI) is billed by the hour, not per token: its models sync at "
       "price 0 unless you set default prices"),
    _T("ollama", "Ollama", "ollama", "http://localhost:11434", None,
       docs_url="https://github.com/ollama/ollama/blob/main/docs/api.md", self_hosted=True),
    _T("vllm", "vLLM", "custom", "http://localhost:8000/v1", None,
       docs_url="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
       self_hosted=True, api_base_suffix="/v1"),
    _T("llamacpp", "llama.cpp server", "custom", "http://localhost:8080/v1", None,
       docs_url="https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
       self_hosted=True, api_base_suffix="/v1"),
)  # fmt: skip

TEMPLATES_BY_ID: Mapping[str, ProviderTemplate] = MappingProxyType({t.id: t for t in TEMPLATES})


def template_for(template_id: str) -> ProviderTemplate:
    """The template called ``template_id``, or a 404 that lists the known ones."""
    template = TEMPLATES_BY_ID.get(template_id)
    if template is None:
        raise NotFound(
            f"no provider template '{template_id}' (known: {', '.join(TEMPLATES_BY_ID)})",
            param="template_id",
            code="unknown_template",
        )
    return template


def unavailable_reason(template: ProviderTemplate) -> str | None:
    """Why the template cannot create a provider in this build, or None."""
    if template.spec is not None:
        return None
    return (
        f"provider type '{template.provider_type}' is not registered in this Turnout "
        f"(registered: {', '.join(PROVIDER_TYPES)})"
    )


def template_out(template: ProviderTemplate) -> ProviderTemplateOut:
    """The public view of a template, with its type's credential fields when the type exists."""
    spec = template.spec
    return ProviderTemplateOut(
        id=template.id,
        display_name=template.display_name,
        provider_type=template.provider_type,
        api_base=template.api_base,
        api_base_example=template.api_base_example,
        requires=list(template.requires),
        price_id=template.price_id,
        self_hosted=template.self_hosted,
        docs_url=template.docs_url,
        credential_fields=list(spec.credentials.fields) if spec is not None else [],
        credential_required=list(spec.credentials.required) if spec is not None else [],
        available=spec is not None,
        unavailable_reason=unavailable_reason(template),
        note=template.note,
    )


def provider_create(template: ProviderTemplate, body: ProviderFromTemplate) -> ProviderCreate:
    """The ``ProviderCreate`` a template and an admin's parameters make; a 400 naming the field
    when a required parameter is missing or one is given that the template does not take."""
    reason = unavailable_reason(template)
    spec = template.spec
    if reason is not None or spec is None:
        raise InvalidRequest(
            f"template '{template.id}' cannot be used: {reason}",
            param="template_id",
            code="template_unavailable",
        )
    for name in template.requires:
        if getattr(body, name) is None:
            example = template.api_base_example if name == "api_base" else "us-east-1"
            raise InvalidRequest(
                f"{name}: field required by the '{template.id}' template (e.g. {example})",
                param=name,
                code="missing_parameter",
            )
    if body.region is not None and "region" not in template.requires:
        raise InvalidRequest(f"region: the '{template.id}' template takes no region", param="region")
    credentials = dict(body.credentials or {})
    if body.region is not None and "region" in spec.credentials.fields:
        credentials.setdefault("region", SecretStr(body.region))
    # The body's count limit applies to what the caller sent (its schema checked it); the region
    # may make one more. Once these are known fields of the type (no type has more than the limit),
    # the count cannot fail below, and a caller who sent 16 hears which fields the type lacks.
    check_fields(template.provider_type, given_fields(body.api_key, credentials))
    values = {
        "id": body.id or template.id,
        "display_name": body.display_name or template.display_name,
        "provider_type": template.provider_type,
        "api_base": _api_base(template, body),
        "api_key": body.api_key,
        "credentials": credentials or None,
        "api_version": body.api_version,
        "rate_limit_rpm": body.rate_limit_rpm,
        "default_price_input": body.default_price_input,
        "default_price_output": body.default_price_output,
        # explicit either way: Groq reached through a relay on localhost is still Groq's paid API
        "self_hosted": template.self_hosted if body.self_hosted is None else body.self_hosted,
        "price_id": template.stored_price_id(),
    }
    try:
        return ProviderCreate.model_validate(values)
    except ValidationError as exc:  # e.g. a URL that outgrew its column with the suffix added
        message, param = fields_message(exc.errors())
        raise InvalidRequest(message, param=param) from None


def _api_base(template: ProviderTemplate, body: ProviderFromTemplate) -> str:
    """The caller's URL (with the template's suffix when it lacks it), else the filled default."""
    if body.api_base is not None:
        base = body.api_base.rstrip("/")
        suffix = template.api_base_suffix
        return base if not suffix or base.endswith(suffix) else base + suffix
    default = template.api_base or ""  # None only where api_base is required (checked before)
    return default.format(**{name: getattr(body, name) for name in PLACEHOLDERS})
