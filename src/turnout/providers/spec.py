"""``ProviderSpec``: everything Turnout knows about one provider type, declared in one place.

A spec names its chat adapter (which carries the auth headers, the signing hook and the wire
translation), how its models are listed (URL rules, query, page format and pagination), its API
version, the genai-prices id its prices are looked up under, the secret fields its credential
has, and whether its servers count as self-hosted. The registry (``providers/registry.py``) lists
the specs; the type list, validation and help texts are derived from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from turnout.providers.base import ChatAdapter, Signer
from turnout.providers.credentials import Credentials

if TYPE_CHECKING:
    from turnout.modelinfo.discovered import DiscoveredModel

#: ``parse_page(payload, price_id) -> (models, next_cursor)``: one decoded models answer, normalized;
#: ``price_id`` is the genai-prices provider to fill unknown prices from (None: guessed from the id).
ParsePage = Callable[[Any, "str | None"], "tuple[list[DiscoveredModel], str | None]"]
#: ``never``: a hosted API (at a private address it is a relay to the paid service); ``when_local``:
#: self-hosted when its host is local; ``always``: self-hosted wherever it runs (Ollama).
SelfHosting = Literal["never", "when_local", "always"]


@dataclass(frozen=True, slots=True)
class Pagination:
    """Cursor pagination of a models list: the first page's query and the parameter that carries
    the cursor ``parse_page`` returns (Anthropic: ``limit=1000``, then ``after_id=<last id>``)."""

    first: Mapping[str, str]
    cursor: str


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How a models answer reads: its parser and, when it is paged, how to ask for the next page."""

    name: str
    parse_page: ParsePage
    pagination: Pagination | None = None

    @property
    def paginated(self) -> bool:
        """Whether the list comes in pages."""
        return self.pagination is not None


@dataclass(frozen=True, slots=True)
class CredentialSchema:
    """The secret fields a provider's credential may hold, and those it must hold."""

    fields: tuple[str, ...] = ("api_key",)
    required: tuple[str, ...] = ()

    def problem(self, given: Mapping[str, str]) -> tuple[str, str] | None:
        """``(field, message)`` for the first field that breaks the schema, or None."""
        for name in given:
            if name not in self.fields:
                return name, f"unknown credential field (expected: {', '.join(self.fields)})"
        for name in self.required:
            if not given.get(name):
                return name, "field required"
        return None


#: The credential of every provider today: an optional API key (self-hosted servers need none).
API_KEY = CredentialSchema()


def no_params(url: str, api_version: str | None) -> dict[str, str]:
    """Models lists of most providers take no query parameters."""
    return {}


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider type. ``models_url(api_base)`` is the default models URL (an admin's
    ``models_endpoint`` replaces its path); ``list_params(url, api_version)`` its query."""

    type: str
    display_name: str
    adapter: ChatAdapter
    models: WireFormat
    models_url: Callable[[str], str]
    list_params: Callable[[str, str | None], dict[str, str]] = no_params
    api_version: str | None = None
    price_id: str | None = None
    credentials: CredentialSchema = API_KEY
    self_hosting: SelfHosting = "never"

    def list_headers(self, credentials: Credentials) -> dict[str, str]:
        """The headers of a models request: JSON, then the adapter's auth headers."""
        return {"Accept": "application/json", **self.adapter.auth_headers(credentials)}

    @property
    def sign(self) -> Signer | None:
        """The adapter's request-signing hook, applied to models requests too."""
        return self.adapter.sign


def bearer(credentials: Credentials) -> dict[str, str]:
    """``Authorization: Bearer <api_key>`` when there is a key (OpenAI-compatible servers, Ollama)."""
    key = credentials.api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def strip_suffixes(api_base: str, *suffixes: str) -> str:
    """``api_base`` without a trailing ``/`` and without the first of ``suffixes`` it ends with."""
    base = api_base.rstrip("/")
    for suffix in suffixes:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base
