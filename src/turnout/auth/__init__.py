"""Authentication: principals, JWTs, roles."""
