"""`reel webhooks …`: inspect and replay webhook deliveries."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Column, Table

from reel.cli.admin import _run, _when
from reel.cli.common import ReelGroup, fail, print_table
from reel.service import webhooks
from reel.service.context import Services

webhooks_app = typer.Typer(
    help="List and replay webhook deliveries.", no_args_is_help=True, cls=ReelGroup
)


@webhooks_app.command("list")
def list_(
    key_id: Annotated[str | None, typer.Option("--key", help="Only this key's (key_…).")] = None,
    status: Annotated[
        str | None, typer.Option(help="pending, delivering, succeeded or failed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Rows to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Recent deliveries, newest first: status, attempts and the receiver's last answer."""

    def action(services: Services) -> list[dict[str, object]]:
        return [
            {
                "id": row.id,
                "keyId": row.key_id,
                "taskId": row.task_id,
                "event": row.event,
                "url": row.url,
                "status": row.status,
                "attempts": row.attempts,
                "nextAttemptAt": row.next_attempt_at if row.status == "pending" else None,
                "lastStatusCode": row.last_status_code,
                "lastError": row.last_error,
                "lastResponse": row.last_response,
                "createdAt": row.created_at,
                "deliveredAt": row.delivered_at,
            }
            for row in webhooks.list_deliveries(services, key_id=key_id, status=status, limit=limit)
        ]

    rows = _run(action)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(
        Column("id", no_wrap=True),
        "event",
        Column("task", no_wrap=True),
        "status",
        "attempts",
        "last answer",
        "created",
    )
    for row in rows:
        answer = row["lastStatusCode"] or row["lastError"] or ""
        table.add_row(
            str(row["id"]),
            str(row["event"]),
            str(row["taskId"]),
            str(row["status"]),
            str(row["attempts"]),
            str(answer),
            _when(row["createdAt"]),  # type: ignore[arg-type]
        )
    print_table(table)


@webhooks_app.command("replay")
def replay(
    delivery_ids: Annotated[
        list[str] | None, typer.Argument(help="Delivery ids (msg_…) to send again.")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Replay every delivery that failed for good.")
    ] = False,
) -> None:
    """Send deliveries again (same webhook-id, fresh attempts and backoff)."""
    if not delivery_ids and not failed:
        fail("give delivery ids, or --failed", 2)
    ids = _run(lambda services: webhooks.replay(services, delivery_ids, failed=failed))
    missing = set(delivery_ids or ()) - set(ids)
    if missing:
        fail(f"unknown or in-flight deliveries: {', '.join(sorted(missing))}")
    typer.echo(f"queued {len(ids)} delivery(ies) again: {', '.join(ids) or '-'}")
