"""Google Gemini's native ``generateContent`` API (``provider_type: gemini``)."""
