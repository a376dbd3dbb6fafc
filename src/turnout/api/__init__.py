"""HTTP, and only here: the edge of both planes.

A data-plane request enters ``hot_path`` (a plain ASGI dispatcher in front of FastAPI), reaches its
handler in ``data_plane``, is authenticated (``auth.authenticate``, the one place that knows keys and
tokens) and parsed from the caller's dialect (``parse``, ``native``, the Anthropic translation) into a
``domain.requests.ChatCall``. ``gateway.Gateway`` returns a domain result; ``answers.render`` writes
it in the caller's dialect (``dialects``). The control plane is FastAPI routers calling services.
"""
