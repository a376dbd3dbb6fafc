"""Routing, a function of the snapshot and a request: task detection (``detection``), the plan of a
named model (``plan``), candidates, filters and scores (``router``, with learned ``experience``),
explanations, and the policy and task-map administration. It reads breaker state through
``service.BreakerView`` and never builds HTTP answers or calls a provider."""
