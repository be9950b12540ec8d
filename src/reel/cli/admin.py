"""`reel keys …` and `reel credits …`: operator commands on the same database as the server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.table import Column, Table

from reel.cli.common import (
    ReelGroup,
    database_errors,
    fail,
    open_services,
    print_table,
)
from reel.config import Settings
from reel.service import admin, keys
from reel.service.context import Services, prepare_database
from reel.service.errors import ReelError

keys_app = typer.Typer(
    help="Create, list and revoke API keys.", no_args_is_help=True, cls=ReelGroup
)
credits_app = typer.Typer(help="Add and inspect credits.", no_args_is_help=True, cls=ReelGroup)
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON for scripts.")]


def _ID(header: str) -> Column:
    """A column of ids or URLs: never wrapped (tables print as wide as they need)."""
    return Column(header, no_wrap=True)


@contextmanager
def _services() -> Iterator[Services]:
    settings = Settings()
    services = open_services(settings)
    try:
        with database_errors(settings):
            prepare_database(services)
            yield services
    finally:
        services.close()


def _run(action: Callable[[Services], T]) -> T:
    with _services() as services:
        try:
            return action(services)
        except ReelError as exc:
            fail(exc.message)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the key's owner.")],
    credits: Annotated[int, typer.Option(min=0, help="Credits granted to its account.")] = 0,
    account: Annotated[
        str | None,
        typer.Option(help="Add the key to this account (acct_…); default: a new account."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line for scripts.")] = False,
) -> None:
    """Create a key (in a new account, or in --account). Its secret is printed once."""

    def action(services: Services) -> keys.IssuedKey:
        return admin.issue_key(services, name=name, credits=credits, account_id=account)

    issued = _run(action)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": issued.id,
                    "name": issued.name,
                    "account": issued.account,
                    "key": issued.key,
                    "credits": issued.credits,
                    "webhookSecret": issued.webhook_secret,
                }
            )
        )
        return
    typer.echo(
        f"Created key {issued.id} ({issued.name}) in account {issued.account}"
        f" (+{issued.credits} credits)."
    )
    typer.echo("Secret (shown once; store it now):")
    typer.echo(issued.key)
    typer.echo("Webhook signing secret (shown once; verifies this key's webhook events):")
    typer.echo(issued.webhook_secret)


@keys_app.command("webhook")
def webhook(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…).")],
    url: Annotated[
        str | None, typer.Argument(help="Public http(s) URL that receives the key's events.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop sending this key's events.")] = False,
) -> None:
    """Set (or with --clear remove) the URL that receives a key's webhook events."""
    if (url is None) == (not clear):
        fail("give a URL, or --clear", 2)

    def action(services: Services) -> None:
        admin.set_webhook(services, key_id, None if clear else url)

    _run(action)
    typer.echo(f"{key_id}: webhook {'removed' if clear else f'set to {url}'}.")


@keys_app.command("webhook-secret")
def webhook_secret(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…).")],
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Replace the secret and print the new one.")
    ] = False,
) -> None:
    """Rotate a key's webhook signing secret (secrets are only ever shown when made)."""
    if not rotate:
        fail(
            "a secret is shown only once; pass --rotate for a new one "
            "(the old one stops verifying at once)",
            2,
        )

    def action(services: Services) -> str:
        return admin.rotate_webhook_secret(services, key_id)

    secret = _run(action)
    typer.echo(f"{key_id}: new webhook signing secret (shown once):")
    typer.echo(secret)


@keys_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List keys with balances (secrets are never shown)."""

    def action(services: Services) -> list[dict[str, object]]:
        with services.db.read() as session:
            return [
                {
                    "id": row.key.id,
                    "name": row.key.name,
                    "account": row.key.account_id,
                    "credits": row.key.balance,
                    "createdAt": row.key.created_at,
                    "revokedAt": row.key.revoked_at,
                    "webhookUrl": row.key.webhook_url,
                }
                for row in admin.key_rows(session)
            ]

    rows = _run(action)
    if as_json:
        for item in rows:
            typer.echo(json.dumps(item))
        return
    table = Table(_ID("id"), "name", "credits", "created", "revoked", _ID("webhook"))
    for item in rows:
        table.add_row(
            str(item["id"]),
            str(item["name"]),
            str(item["credits"]),
            _when(item["createdAt"]),  # type: ignore[arg-type]
            _when(item["revokedAt"]),  # type: ignore[arg-type]
            str(item["webhookUrl"] or ""),
        )
    print_table(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_…).")]) -> None:
    """Revoke a key; it is refused from its next request."""

    def action(services: Services) -> None:
        admin.revoke_key(services, key_id)

    _run(action)
    typer.echo(f"Revoked {key_id}.")


@credits_app.command("add")
def add(
    key_id: Annotated[
        str, typer.Argument(help="Key id (key_…: its account) or account id (acct_…).")
    ],
    amount: Annotated[int, typer.Argument(min=1, help="Credits to add.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in the ledger).")] = None,
) -> None:
    """Grant credits to a key's account, or to an account."""

    def action(services: Services) -> int:
        return admin.top_up(services, key_id, amount, note=note)

    balance = _run(action)
    typer.echo(f"{key_id}: +{amount} credits, balance {balance}.")


@credits_app.command("show")
def show(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…).")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Ledger entries to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Balance and recent ledger entries of a key."""

    def action(services: Services) -> tuple[int, list[dict[str, object]]]:
        with services.db.read() as session:
            row = keys.get(session, key_id)
            entries: list[dict[str, object]] = [
                {
                    "createdAt": entry.created_at,
                    "kind": entry.kind,
                    "amount": entry.amount,
                    "balanceAfter": entry.balance_after,
                    "taskId": entry.task_id,
                    "note": entry.note,
                }
                for entry in admin.key_ledger(session, key_id, limit=limit)
            ]
            return row.balance, entries

    balance, entries = _run(action)
    if as_json:
        typer.echo(json.dumps({"id": key_id, "credits": balance, "ledger": entries}))
        return
    table = Table("when", "kind", "amount", "balance", _ID("task"), "note")
    for entry in entries:
        table.add_row(
            _when(entry["createdAt"]),  # type: ignore[arg-type]
            str(entry["kind"]),
            f"{entry['amount']:+d}",
            str(entry["balanceAfter"]),
            str(entry["taskId"] or ""),
            str(entry["note"] or ""),
        )
    typer.echo(f"{key_id}: balance {balance} credits")
    print_table(table)
