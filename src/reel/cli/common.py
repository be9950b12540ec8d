"""What every `reel` command shares: settings, the database notice, one-line errors, help.

Errors a user can act on (a server that cannot be reached, a refused request, a file that
cannot be written, an unknown key id) end a command with one line on stderr and a non-zero
exit, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from reel.client import (
    DEFAULT_SERVER,
    APIConnectionError,
    APITimeoutError,
    ReelAPIError,
    ReelClientError,
)
from reel.config import Settings
from reel.service.context import Services, build_services

__all__ = [
    "ReelGroup",
    "client_errors",
    "database_label",
    "fail",
    "open_services",
    "print_table",
]


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with ``error: message`` on stderr (one line) and exit ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def print_table(table: Table) -> None:
    """Print ``table`` as wide as its content: ids, URLs and dates are never cut or wrapped."""
    console = Console()
    natural = Measurement.get(console, console.options.update(width=1 << 16), table).maximum
    Console(width=max(console.width, natural)).print(table)


# --- the database ---------------------------------------------------------------------------


def database_label(settings: Settings) -> str:
    """The database in words: an SQLite file's path, or a URL without its password."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def open_services(settings: Settings) -> Services:
    """The services of a command that opens the database; says which one on stderr."""
    typer.echo(f"using database {database_label(settings)}", err=True)
    try:
        return build_services(settings)
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot open the database {database_label(settings)}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SQLAlchemyError) and getattr(exc, "orig", None) is not None:
        return str(exc.orig).strip().splitlines()[0]  # type: ignore[attr-defined]
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@contextmanager
def database_errors(settings: Settings) -> Iterator[None]:
    """A database that cannot be reached or read ends the command in one line."""
    try:
        yield
    except SQLAlchemyError as exc:
        fail(f"database {database_label(settings)}: {_reason(exc)}")


# --- the API client -------------------------------------------------------------------------


@contextmanager
def client_errors(server: str | None) -> Iterator[None]:
    """Client-side failures of `reel generate` / `reel status` as one line each."""
    where = (server or DEFAULT_SERVER).rstrip("/")
    try:
        yield
    except APITimeoutError:
        fail(
            f"the Reel server at {where} did not answer in time; check that it is running "
            "and not overloaded (`reel serve`), or pass --server / set REEL_SERVER"
        )
    except (APIConnectionError, httpx.TransportError) as exc:
        fail(
            f"could not reach a Reel server at {where} ({_connection_reason(exc)}); "
            "check that `reel serve` is running there, or pass --server / set REEL_SERVER"
        )
    except ReelAPIError as exc:
        fail(str(exc))  # "CODE: message (request req_…)", the code once
    except ReelClientError as exc:
        fail(str(exc))
    except OSError as exc:
        target = f" {exc.filename}" if exc.filename else ""
        fail(f"cannot write{target}: {exc.strerror or exc}")


def _connection_reason(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip() or type(cause).__name__
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.removeprefix("connection failed: ").splitlines()[0]


# --- help -----------------------------------------------------------------------------------

#: Plain names for the value an option takes: help shows TEXT, not Typer's ``<str>``.
_TYPE_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH"}


def _plain_type(param: Any) -> Callable[..., str | None]:
    def label(ctx: Any = None) -> str | None:
        if getattr(param, "param_type_name", "") == "argument" or getattr(param, "is_flag", False):
            return None  # arguments are named already; flags take no value
        if param.metavar:
            return str(param.metavar)
        typed = str(type(param).display_type(param, ctx)).strip("<>")
        inner = typed.removeprefix("list[").removesuffix("]").removesuffix(" range")
        return _TYPE_LABELS.get(inner, inner.upper())

    return label


def _tidy_params(command: Any, ctx: Any) -> None:
    for param in command.get_params(ctx):
        param.display_type_rich = _plain_type(param)  # this instance only, for help


class ReelGroup(TyperGroup):
    """A command group whose help, and its commands' help, shows TEXT/INTEGER/PATH for
    values and nothing for flags (instead of ``<str>`` and ``<bool>``)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _tidy_params(self, ctx)
        super().format_help(ctx, formatter)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _tidy_params(command, ctx)
        return command
