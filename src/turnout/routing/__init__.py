"""Routing: task detection, experience, scoring, policies and the router."""
