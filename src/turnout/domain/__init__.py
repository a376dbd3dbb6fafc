"""The read model every request reads and the request types it travels as, below the packages that
use them (gateway, routing, feedback, agents), so none of those has to import another to reach them.

- ``snapshot``: the in-memory view of providers, models, agents, keys, policies and task maps that
  the data plane reads instead of the database, and the store that keeps it fresh;
- ``requests``: ``ChatCall``, a validated request in canonical form with Turnout's extensions;
- ``capsule``: an agent's ``allowed_models`` rules;
- ``policies`` and ``task_maps``: the policy and task-map views the snapshot holds.
"""
