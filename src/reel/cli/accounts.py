"""`reel accounts …`, `reel usage export` and `reel audit list`: accounts, their quotas, usage
statements and the operators' audit log, on the same database as the server."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Column, Table

from reel.cli.admin import JsonOpt, _run
from reel.cli.common import ReelGroup, fail, print_table
from reel.service import accounts, admin, audit, keys, ledger
from reel.service import usage_export as statement
from reel.service.clock import now
from reel.service.context import Services

accounts_app = typer.Typer(
    help="Accounts: balances, keys and quotas.", no_args_is_help=True, cls=ReelGroup
)
usage_app = typer.Typer(help="Usage statements.", no_args_is_help=True, cls=ReelGroup)
audit_app = typer.Typer(help="The operators' audit log.", no_args_is_help=True, cls=ReelGroup)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _limit_text(value: object) -> str:
    return "-" if value is None else str(value)


@accounts_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List accounts with their balances, keys and limits."""

    def action(services: Services) -> list[dict[str, object]]:
        with services.db.read() as session:
            return [
                {
                    "id": a.id,
                    "name": a.name,
                    "credits": a.balance,
                    "keys": total,
                    "liveKeys": live,
                    "createdAt": a.created_at,
                    **_limits_json(accounts.limits_of(a)),
                }
                for a, total, live in accounts.list_accounts(session)
            ]

    rows = _run(action)
    if as_json:
        for item in rows:
            typer.echo(json.dumps(item))
        return
    table = Table(
        Column("id", no_wrap=True), "name", "credits", "keys", "daily", "monthly", "videos/day"
    )
    for item in rows:
        table.add_row(
            str(item["id"]),
            str(item["name"]),
            str(item["credits"]),
            f"{item['liveKeys']}/{item['keys']}",
            _limit_text(item["dailyCredits"]),
            _limit_text(item["monthlyCredits"]),
            _limit_text(item["dailyVideos"]),
        )
    print_table(table)


def _limits_json(limits: accounts.Limits) -> dict[str, object]:
    return {
        "dailyCredits": limits.daily_credits,
        "monthlyCredits": limits.monthly_credits,
        "dailyVideos": limits.daily_videos,
        "createsPerHour": limits.creates_per_hour,
    }


@accounts_app.command("show")
def show(
    account_id: Annotated[str, typer.Argument(help="Account id (acct_…).")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Ledger entries to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """An account's balance, keys, quotas with this period's usage, and recent ledger."""

    def action(services: Services) -> dict[str, object]:
        with services.db.read() as session:
            account = accounts.get(session, account_id)
            used = accounts.period_usage(session, account_id)
            return {
                "id": account.id,
                "name": account.name,
                "credits": account.balance,
                "limits": _limits_json(accounts.limits_of(account)),
                "used": {
                    "dailyCredits": used.day_credits,
                    "monthlyCredits": used.month_credits,
                    "dailyVideos": used.day_videos,
                },
                "keys": [
                    {
                        "id": k.id,
                        "name": k.name,
                        "createdAt": k.created_at,
                        "revokedAt": k.revoked_at,
                    }
                    for k in keys.list_keys(session, account_id=account_id)
                ],
                "ledger": [
                    {
                        "createdAt": e.created_at,
                        "kind": e.kind,
                        "amount": e.amount,
                        "balanceAfter": e.balance_after,
                        "keyId": e.key_id,
                        "taskId": e.task_id,
                        "note": e.note,
                    }
                    for e in ledger.account_history(session, account_id, limit=limit)
                ],
            }

    info = _run(action)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(f"{info['id']} ({info['name']}): balance {info['credits']} credits")
    limits: dict[str, object] = info["limits"]  # type: ignore[assignment]
    used: dict[str, object] = info["used"]  # type: ignore[assignment]
    for name in ("dailyCredits", "monthlyCredits", "dailyVideos"):
        typer.echo(f"  {name}: {used[name]} used of {_limit_text(limits[name])} (UTC)")
    typer.echo(f"  createsPerHour: {_limit_text(limits['createsPerHour'])}")
    table = Table(Column("key", no_wrap=True), "name", "created", "revoked")
    for k in info["keys"]:  # type: ignore[attr-defined]
        table.add_row(k["id"], k["name"], _when(k["createdAt"]), _when(k["revokedAt"]))
    print_table(table)
    entries = Table("when", "kind", "amount", "balance", Column("key", no_wrap=True), "task")
    for e in info["ledger"]:  # type: ignore[attr-defined]
        entries.add_row(
            _when(e["createdAt"]),
            e["kind"],
            f"{e['amount']:+d}",
            str(e["balanceAfter"]),
            e["keyId"] or "",
            e["taskId"] or "",
        )
    print_table(entries)


def _cap(value: int | None) -> int | None:
    return None if value is None or value < 0 else value


@accounts_app.command("limits")
def limits(
    account_id: Annotated[str, typer.Argument(help="Account id (acct_…).")],
    daily_credits: Annotated[
        int | None, typer.Option(help="Credits per UTC day (-1 removes the cap).")
    ] = None,
    monthly_credits: Annotated[
        int | None, typer.Option(help="Credits per UTC calendar month (-1 removes the cap).")
    ] = None,
    daily_videos: Annotated[
        int | None, typer.Option(help="Videos per UTC day (-1 removes the cap).")
    ] = None,
    creates_per_hour: Annotated[
        int | None,
        typer.Option(help="Creations per hour across the account's keys (-1 removes it)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set an account's quotas. Refunded tasks do not count against them."""
    given = {
        "daily_credits": daily_credits,
        "monthly_credits": monthly_credits,
        "daily_videos": daily_videos,
        "creates_per_hour": creates_per_hour,
    }
    changes = {k: _cap(v) for k, v in given.items() if v is not None}

    def action(services: Services) -> accounts.Limits:
        if changes:
            return admin.set_limits(services, account_id, changes)
        with services.db.read() as session:
            return accounts.limits_of(accounts.get(session, account_id))

    now_in_force = _limits_json(_run(action))
    if as_json:
        typer.echo(json.dumps({"id": account_id, **now_in_force}))
        return
    for name, value in now_in_force.items():
        typer.echo(f"{account_id}: {name} {_limit_text(value)}")


@usage_app.command("export")
def export(
    account_id: Annotated[str, typer.Option("--account", help="Account id (acct_…).")],
    since: Annotated[
        str | None, typer.Option("--from", help="YYYY-MM-DD or ISO time (default: 1st of month).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="YYYY-MM-DD (included) or ISO time (default: now).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
) -> None:
    """Write an account's usage statement (one row per task, credits net of refunds) to stdout."""
    if fmt not in statement.FORMATS:
        fail("--format must be csv or json", 2)

    def action(services: Services) -> None:
        with services.db.read() as session:
            accounts.get(session, account_id)
        span = statement.parse_range(since, until, at=now())
        for chunk in statement.stream(services.db, account_id, span, fmt):
            sys.stdout.write(chunk)
        if fmt == "json":
            sys.stdout.write("\n")

    _run(action)


@audit_app.command("list")
def audit_list(
    target: Annotated[str | None, typer.Option(help="Only this key, account or task.")] = None,
    action_name: Annotated[
        str | None, typer.Option("--action", help="Only this action (key.create, …).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="Rows to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Operators' actions, newest first: who, when, what, on what, before and after."""

    def action(services: Services) -> list[dict[str, object]]:
        with services.db.read() as session:
            return [
                {
                    "id": e.id,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "before": e.before,
                    "after": e.after,
                }
                for e in audit.entries(session, target=target, action=action_name, limit=limit)
            ]

    rows = _run(action)
    if as_json:
        for item in rows:
            typer.echo(json.dumps(item))
        return
    table = Table("when", "actor", "action", Column("target", no_wrap=True), "before", "after")
    for item in rows:
        table.add_row(
            _when(item["at"]),  # type: ignore[arg-type]
            str(item["actor"]),
            str(item["action"]),
            str(item["target"]),
            json.dumps(item["before"]) if item["before"] is not None else "",
            json.dumps(item["after"]) if item["after"] is not None else "",
        )
    print_table(table)
