"""HTTP layer: parse, authorize, call a service, shape the response."""
