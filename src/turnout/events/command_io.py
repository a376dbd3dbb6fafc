"""What every NATS command shares: the caller's bearer token verified as the API verifies it, the
JSON body validated into its schema, and the reply's shape (so every command answers alike)."""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

from turnout.auth.jwt_tokens import JwtCodec
from turnout.auth.principal import Principal
from turnout.errors import InvalidRequest, TurnoutError, Unauthenticated, fields_message

PREFIX = "turnout.commands."  # a command's public subject: PREFIX + its name
QUEUE = "turnout"  # the queue group of the replicas: one of them takes each command


def authorization(msg: Msg) -> str:
    """The ``Authorization`` header as sent ("" when none); its name is case-insensitive, as in HTTP."""
    return next((v for k, v in (msg.headers or {}).items() if k.lower() == "authorization"), "")


def principal_of(msg: Msg, jwt: JwtCodec) -> Principal:
    """The caller, from the bearer token (a JWT) in the message's ``Authorization`` header."""
    scheme, _, token = authorization(msg).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token (the Authorization header)", code="missing_token")
    return jwt.verify(token.strip())


def parse_body(data: bytes, schema: type[BaseModel]) -> Any:
    """``data`` validated into ``schema``; a bad body raises the error the API's 400 would give."""
    try:
        return schema.model_validate_json(data or b"{}")
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise InvalidRequest("the command's body is not valid JSON", code="invalid_json") from None
        # every bad field (an error about the whole body goes under ``body``), as the API names them
        message, param = fields_message(exc.errors(), whole="body")
        raise InvalidRequest(message, param=param, code="invalid_value") from None


def ok_reply(command: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "command": command, "result": result}


def error_reply(command: str, exc: TurnoutError) -> dict[str, Any]:
    error = {"type": exc.error_type, "code": exc.code, "message": exc.message, "param": exc.param}
    return {"ok": False, "command": command, "error": error}


def failed_reply(command: str, exc: Exception) -> dict[str, Any]:
    """An unexpected failure: never leave a caller waiting, say it failed."""
    error = {"type": "api_error", "code": "internal_error", "message": type(exc).__name__, "param": None}
    return {"ok": False, "command": command, "error": error}
