"""Azure OpenAI (``provider_type: azure``): the OpenAI wire format behind Azure's deployment URLs."""
