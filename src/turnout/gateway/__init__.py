"""The data plane between the HTTP edge and the providers, one straight line, top to bottom:

``pipeline.Gateway`` routes a ``ChatCall`` (``routing.RoutingService``: task, candidates, ranked
plan), calls down the plan (``failover.Caller``: limits, breakers, retries, fallbacks, through the
provider adapters), and returns a domain result (``results``: an answer, a stream of canonical
chunks, or an error) after handing the call's record (``records``) to the writer. It never imports
``api/`` or an HTTP framework; it never climbs back to a package it called.
"""
