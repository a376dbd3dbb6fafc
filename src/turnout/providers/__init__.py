"""Outbound providers: one folder per provider type, each declaring a ``ProviderSpec`` (``spec.py``)
that ``registry.py`` lists. See ``README.md`` in this folder for how to add one."""
