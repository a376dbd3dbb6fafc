"""Minting and verifying bearer JWTs (HMAC, one configured algorithm only)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt

from turnout.auth.api_keys import KEY_PREFIX
from turnout.auth.principal import ROLES, Principal
from turnout.errors import InvalidRequest, Unauthenticated

VERIFIED_CACHE_SIZE = 10_000
MAX_SUBJECT, MAX_ID = 255, 64  # the record's subject, tenant and agent columns


class JwtCodec:
    """Signs and verifies tokens with one secret and one algorithm; ``alg: none`` never passes.

    A verified token is remembered until its ``exp`` (bounded cache), so a client that sends the
    same token on every request pays for the HMAC and the claim checks once."""

    def __init__(self, secret: str, algorithm: str = "HS256", default_ttl_s: int = 3600) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self._default_ttl_s = default_ttl_s
        self._verified: dict[str, tuple[Principal, float]] = {}

    def mint(
        self, subject: str, tenant_id: str, roles: Iterable[str], ttl_s: int | None = None, **extra: Any
    ) -> str:
        """A signed token carrying ``sub``, ``tenant_id``, ``roles`` and ``exp``."""
        role_list = sorted(set(roles))
        unknown = [r for r in role_list if r not in ROLES]
        if unknown:
            raise InvalidRequest(f"unknown role(s) {unknown}; allowed: {list(ROLES)}", param="roles")
        now = int(time.time())
        claims = {
            "sub": subject,
            "tenant_id": tenant_id,
            "roles": role_list,
            "iat": now,
            "exp": now + (ttl_s if ttl_s is not None else self._default_ttl_s),
            **extra,
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, token: str) -> Principal:
        """Decode ``token`` or raise Unauthenticated (bad signature, expired, wrong algorithm...).
        A token minted for a purpose (a UI login link or session) is not a bearer token."""
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[1]:
            return cached[0]
        principal, expires_at, claims = self._decode(token)
        if "purpose" in claims:
            raise Unauthenticated(
                f"this token is a web UI {claims['purpose']} token, not an API bearer token",
                code="wrong_credential",
            )
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires_at)
        return principal

    def verify_for(self, token: str, purpose: str) -> tuple[Principal, dict[str, Any]]:
        """Decode a token minted for ``purpose`` (``mint(..., purpose=...)``), with its claims."""
        principal, _, claims = self._decode(token)
        if claims.get("purpose") != purpose:
            raise Unauthenticated(f"not a {purpose} token", code="wrong_credential")
        return principal, claims

    def _decode(self, token: str) -> tuple[Principal, float, dict[str, Any]]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("expired token: mint a new one", code="token_expired") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise Unauthenticated("token algorithm not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated(
                "invalid token signature: it was signed with another secret than this server's"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token is missing the '{exc.claim}' claim") from exc
        except jwt.DecodeError as exc:
            if token.startswith(KEY_PREFIX):
                raise Unauthenticated(
                    "an agent API key is not accepted here: use a bearer token (JWT)", code="wrong_credential"
                ) from exc
            raise Unauthenticated("malformed bearer token: not a JWT", code="malformed_token") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        tenant = claims.get("tenant_id")
        roles = claims.get("roles", [])
        subject = str(claims["sub"])
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated("token has no tenant_id claim")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("token roles claim must be a list of strings")
        agent = claims.get("agent_id")
        agent_id = agent if isinstance(agent, str) and agent else None
        # the claims are stored on every record (messages.subject, tenant_id, agent_id): same limits
        if len(subject) > MAX_SUBJECT or len(tenant) > MAX_ID or (agent_id and len(agent_id) > MAX_ID):
            raise Unauthenticated(
                f"token sub must be at most {MAX_SUBJECT} characters, tenant_id and agent_id at most {MAX_ID}"
            )
        principal = Principal(
            subject=subject,
            tenant_id=tenant,
            roles=frozenset(r for r in roles if r in ROLES),
            agent_id=agent_id,
        )
        return principal, float(claims["exp"]), claims
