"""Spend control: budgets, their reservations and alerts, and rate limits per key, agent and tenant.

A call reserves its worst-case cost (and its request and token counts) before it goes upstream, and
settles with its actual cost when it ends; the ledger that holds the counters runs in this process
or, with ``TURNOUT_REDIS_URL``, in Redis, shared by the replicas."""
