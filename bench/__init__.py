"""End-to-end benchmarks: real gateway and upstream processes, measured through the HTTP API."""
