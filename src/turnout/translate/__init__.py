"""Translation between client dialects, the canonical model and provider wire formats.

The canonical model (:mod:`.types`) is OpenAI Chat Completions' shapes. Inbound, an Anthropic
client's request is translated to it (:func:`.anthropic_inbound.anthropic_to_openai_request`) and answers
are written back in its dialect (:func:`.anthropic.openai_to_anthropic_response`,
:class:`.anthropic_stream.AnthropicStreamEncoder`). Outbound, each provider adapter picks the
translation of its wire format: :mod:`.openai` (a pass-through), :mod:`.anthropic_outbound` (with
the responses, usage and errors of :mod:`.anthropic`), :mod:`.ollama`, :mod:`.gemini_outbound`
(with :mod:`.gemini` and :mod:`.gemini_stream`), :mod:`.bedrock` (with :mod:`.bedrock_stream`).
Provider error answers become the canonical :class:`.errors.ProviderError`.

Nothing here does I/O or knows where a provider lives: URLs, headers and credentials belong to the
provider folders (``turnout.providers``).
"""
