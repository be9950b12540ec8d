"""The `reel` command: Typer root that wires the sub-commands."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from reel import __version__
from reel.cli import accounts, admin, generate, observe, serve, verify, webhooks
from reel.cli.common import ReelGroup

app = typer.Typer(
    name="reel",
    help="Reel: a self-hosted video generation service speaking the Sora 2 API contract.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ReelGroup,
)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("migrate")(serve.migrate)
app.command("workers")(observe.workers)
app.command("queue")(observe.queue)
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.credits_app, name="credits")
app.add_typer(accounts.accounts_app, name="accounts")
app.add_typer(accounts.usage_app, name="usage")
app.add_typer(accounts.audit_app, name="audit")
app.add_typer(webhooks.webhooks_app, name="webhooks")
app.command("generate")(generate.generate)
app.command("extend")(generate.extend)
app.command("status")(generate.status)
app.command("verify")(verify.verify)


@app.command("version")
def version() -> None:
    """Print Reel's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # Settings from the environment: one clear line per problem, no traceback.
        for error in exc.errors():
            name = "REEL_" + "_".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: {message if name in message else f'{name}: {message}'}", err=True)
        raise SystemExit(2) from None
