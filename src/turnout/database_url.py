"""TURNOUT_DATABASE_URL's libpq parameters in asyncpg's terms: what SQLAlchemy's asyncpg dialect
and the change bus pass to ``asyncpg.connect``, and what is refused at start-up because asyncpg
cannot take it. Apart from the settings because it is the database driver's vocabulary, not a
setting of Turnout's; imports nothing of Turnout's, so the settings and the store both use it."""

from __future__ import annotations

from typing import Any

# libpq's sslmode values, which asyncpg takes as ssl=
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's TLS parameters asyncpg reads from the environment, not as connect() arguments
_TLS_FILE_VARIABLES = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
}
# asyncpg.connect's values of target_session_attrs
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
# asyncpg.connect's numeric arguments (and SQLAlchemy's prepared_statement_cache_size): the URL gives
# text, which asyncpg compares with numbers (a TypeError at connect), so they go as numbers
_SECONDS = ("timeout", "command_timeout")
_COUNTS = ("statement_cache_size", "max_cached_statement_lifetime", "max_cacheable_statement_size")
# asyncpg.connect's arguments that are no text (objects, or SQLAlchemy's own): never from a URL
_NOT_FROM_URL = {"dsn", "loop", "connection_class", "record_class", "server_settings"}
# SQLAlchemy's multi-host URLs repeat these
_REPEATABLE = {"host", "port"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
    return seconds


def _count(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{name} must be a whole number from 0, not {value!r}")
    return int(value)


def _server_options(value: str) -> dict[str, str]:
    """libpq's ``options`` (the server's command line: ``-c name=value``, ``--name=value``, a
    backslash escaping a space) as server settings, which asyncpg sends at connect instead."""
    words, word, escaped = [], "", False
    for char in value + " ":
        if escaped:
            word, escaped = word + char, False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if word:
                words.append(word)
            word = ""
        else:
            word += char
    settings: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-c" and index + 1 < len(words):
            index += 1
            setting = words[index]
        elif word.startswith("--") or (word.startswith("-c") and word != "-c"):
            setting = word[2:]
        else:
            raise ValueError(f"options takes only -c name=value settings here, not {word!r}")
        name, equals, setting_value = setting.partition("=")
        if not equals or not name:
            raise ValueError(f"options takes only -c name=value settings here, not {setting!r}")
        settings[name.replace("-", "_")] = setting_value
        index += 1
    return settings


def asyncpg_connect_args(url: str) -> tuple[str, dict[str, Any]]:
    """``url`` as SQLAlchemy's asyncpg dialect takes it, and the engine's ``connect_args``.

    SQLAlchemy passes the URL's query to ``asyncpg.connect`` as keyword arguments, all text, so a
    libpq URL (psql's, Heroku's, RDS's, a Helm chart's) failed at connect: libpq's names asyncpg has
    no keyword for were a TypeError, and so were asyncpg's numbers given as text. Here libpq's
    parameters become asyncpg's (``sslmode`` its ``ssl``, ``connect_timeout`` its ``timeout``,
    ``application_name`` and ``options``'s ``-c`` settings its ``server_settings``), asyncpg's own
    numbers become numbers, and anything asyncpg cannot take is refused (a ValueError saying what to
    do, which the settings validator reports at start-up). Other URLs are returned as they are.
    SQLAlchemy and asyncpg are imported here, not with the settings: CLI commands that need no
    database start without them."""
    if not url.startswith("postgresql+asyncpg://") or "?" not in url:
        return url, {}
    import inspect

    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    takes = set(inspect.signature(asyncpg.connect).parameters) - _NOT_FROM_URL
    kept: dict[str, str | tuple[str, ...]] = {}
    connect_args: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for name, given in parsed.query.items():
        if isinstance(given, tuple) and name not in _REPEATABLE:
            raise ValueError(f"give {name} once in TURNOUT_DATABASE_URL")
        value = given if isinstance(given, str) else ""
        if name in _TLS_FILE_VARIABLES:
            variable = _TLS_FILE_VARIABLES[name]
            raise ValueError(
                f"asyncpg takes no {name} in the URL: set {variable}={value} in the environment instead"
            )
        if name == "sslpassword":
            raise ValueError("asyncpg takes no sslpassword in the URL: use a client key without a passphrase")
        if name == "requiressl":
            raise ValueError("asyncpg takes no requiressl; use sslmode=require instead")
        if name in ("sslmode", "ssl"):
            if "sslmode" in parsed.query and "ssl" in parsed.query:
                raise ValueError("give sslmode or ssl, not both")
            if value not in SSLMODES:
                raise ValueError(f"{name} must be one of {', '.join(SSLMODES)}")
            kept["ssl"] = value
        elif name in ("connect_timeout", "timeout"):
            if "connect_timeout" in parsed.query and "timeout" in parsed.query:
                raise ValueError("give connect_timeout or timeout, not both")
            connect_args["timeout"] = _seconds(name, value)
        elif name in ("application_name", "fallback_application_name"):
            pass  # below: application_name wins over the fallback and over options' -c
        elif name == "options":
            settings.update(_server_options(value))
        elif name == "client_encoding":
            if value.lower().replace("-", "") not in ("utf8", "unicode"):
                raise ValueError(
                    f"asyncpg speaks only UTF8; remove client_encoding={value} from TURNOUT_DATABASE_URL"
                )
        elif name == "dbname":
            if parsed.database:
                raise ValueError("give the database in the path or as dbname, not both")
            parsed = parsed.set(database=value)
        elif name == "sslnegotiation" and "direct_tls" in takes:
            if value not in ("postgres", "direct"):
                raise ValueError("sslnegotiation must be postgres or direct")
            connect_args["direct_tls"] = value == "direct"
        elif name == "direct_tls" and "direct_tls" in takes:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(f"direct_tls must be true or false, not {value!r}")
            connect_args["direct_tls"] = value.lower() in _TRUE
        elif name == "target_session_attrs" and name in takes:
            if value not in _SESSION_ATTRS:
                raise ValueError(f"target_session_attrs must be one of {', '.join(_SESSION_ATTRS)}")
            kept[name] = value
        elif name in _SECONDS:
            connect_args[name] = _seconds(name, value)
        elif name in _COUNTS:
            connect_args[name] = _count(name, value)
        elif name == "prepared_statement_cache_size":  # SQLAlchemy's, which it makes a number
            kept[name] = str(_count(name, value))
        elif name in takes:  # text asyncpg takes as it is: host, port, user, passfile, service...
            kept[name] = given
        else:
            raise ValueError(f"asyncpg takes no {name}; remove it from TURNOUT_DATABASE_URL")
    application_name = parsed.query.get("application_name", parsed.query.get("fallback_application_name"))
    if isinstance(application_name, str):
        settings["application_name"] = application_name
    if settings:
        connect_args["server_settings"] = settings
    moved = parsed.set(query=kept)
    return moved.render_as_string(hide_password=False), connect_args


def checked_postgres_url(url: str) -> str:
    """The settings' URL, checked by ``asyncpg_connect_args`` (what asyncpg cannot take is refused
    at start-up), with libpq's ``sslmode=`` already asyncpg's ``ssl=``; the rest of libpq's
    parameters stay, in libpq's words, until an engine is made."""
    asyncpg_connect_args(url)
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    moved = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": parsed.query["sslmode"]})
    return moved.render_as_string(hide_password=False)
