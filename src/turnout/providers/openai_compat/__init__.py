"""OpenAI-compatible providers: ``openai``, ``openrouter`` and ``custom`` (vLLM, llama.cpp, LM Studio,
...) share one adapter and differ only in their specs (``spec.py``) and model-list formats."""
