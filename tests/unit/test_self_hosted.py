"""Which providers count as self-hosted (their models then sync free), from type and address alone."""

from __future__ import annotations

import pytest

from turnout.catalog.self_hosted import detected_self_hosted


@pytest.mark.parametrize(
    "api_base",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.8.9.10/v1",
        "http://localhost:11434",
        "http://LOCALHOST./v1",
        "http://llm.localhost/v1",
        "http://[::1]:8000/v1",
        "http://10.1.2.3:8000/v1",
        "http://172.16.0.5/v1",
        "http://172.31.255.255/v1",
        "http://192.168.1.20:1234/v1",
        "http://[fd12:3456::1]/v1",
        "http://[::ffff:10.0.0.7]/v1",  # IPv4-mapped private address
        "http://2130706433/v1",  # 127.0.0.1 as one integer
        "http://vllm:8000/v1",  # a Docker Compose service name
        "http://ollama:11434",
        "https://llama-server/v1",
    ],
)
def test_local_openai_compatible_servers_are_self_hosted(api_base: str) -> None:
    assert detected_self_hosted("openai", api_base)
    assert detected_self_hosted("custom", api_base)


@pytest.mark.parametrize(
    "api_base",
    [
        "https://api.openai.com/v1",
        "https://openrouter.ai/api/v1",
        "http://8.8.8.8/v1",
        "http://172.32.0.1/v1",  # just outside 172.16.0.0/12
        "http://11.0.0.1/v1",
        "http://[2001:db8::1]/v1",
        "http://host.docker.internal:8000/v1",  # a dotted name may be anything
    ],
)
def test_hosted_looking_servers_are_not(api_base: str) -> None:
    assert not detected_self_hosted("openai", api_base)
    assert not detected_self_hosted("custom", api_base)


def test_ollama_is_self_hosted_wherever_it_is() -> None:
    assert detected_self_hosted("ollama", "https://ollama.example.com")


@pytest.mark.parametrize("provider_type", ["anthropic", "azure", "openrouter"])
def test_hosted_api_types_on_a_private_address_are_relays_not_self_hosted(provider_type: str) -> None:
    assert not detected_self_hosted(provider_type, "http://10.0.0.2:4000")
