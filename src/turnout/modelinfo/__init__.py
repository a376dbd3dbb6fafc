"""What is known about a model, whoever lists it: the normalised record a provider's model list
decodes to (``discovered``: capabilities, cost tiers, model types), capabilities inferred from what a
provider reports, cost tiers from prices, and prices and context windows from genai-prices. Below
the provider folders that decode model lists and the catalog that stores them."""
