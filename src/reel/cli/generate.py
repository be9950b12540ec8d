"""`reel generate`, `reel extend` and `reel status`: the Python client with a Rich progress
display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from reel.cli.common import client_errors
from reel.client import Aspect, Client, Duration, Mode, TaskStatus, Tier

console = Console(stderr=True)

ServerOpt = Annotated[
    str | None,
    typer.Option(envvar="REEL_SERVER", help="Reel server URL (default http://127.0.0.1:8000)."),
]
KeyOpt = Annotated[str | None, typer.Option(envvar="REEL_API_KEY", help="API key.")]


def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    mode: Annotated[
        str | None,
        typer.Option(
            help="textToVideo or imageToVideo (default: imageToVideo when --image is given)."
        ),
    ] = None,
    tier: Annotated[
        str, typer.Option(help="sora2, sora2-pro-standard or sora2-pro-high.")
    ] = "sora2",
    aspect: Annotated[str, typer.Option(help="portrait or landscape.")] = "portrait",
    duration: Annotated[str, typer.Option(help="Seconds: 10 or 15.")] = "10",
    image: Annotated[
        list[str] | None,
        typer.Option(
            help="Public image URL for image-to-video (repeatable; the first is the start frame)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Where to save the MP4.")] = None,
    server: ServerOpt = None,
    key: KeyOpt = None,
    poll: Annotated[float, typer.Option(help="Seconds between status checks.")] = 2.0,
    callback_url: Annotated[
        str | None, typer.Option(help="Also send signed webhook events for this task here.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Makes the submission safe to retry: one task, one charge."),
    ] = None,
) -> None:
    """Submit a generation, show its progress, then download the video."""
    with client_errors(server), Client(server, key) as client:
        submitted = client.generate(
            prompt,
            # the server validates these and answers the contract's errors
            mode=cast(Mode, mode or ("imageToVideo" if image else "textToVideo")),
            tier=cast(Tier, tier),
            aspect=cast(Aspect, aspect),
            duration=cast(Duration, duration),
            image_urls=image or None,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
        )
        typer.echo(f"task {submitted.task_id} accepted", err=True)
        final = _wait_with_progress(client, submitted.task_id, poll)
        target = out or Path(f"{submitted.task_id}.mp4")
        _download_with_progress(client, final, target)
    typer.echo(f"saved {target} ({final.generation_time}s, {final.credits_used} credits)", err=True)


def extend(
    task_id: Annotated[str, typer.Argument(help="A completed /v1/videos video (task_…).")],
    prompt: Annotated[str, typer.Argument(help="What happens next.")],
    seconds: Annotated[int, typer.Option(help="The new segment: 4, 8, 12, 16 or 20 s.")] = 4,
    out: Annotated[Path | None, typer.Option(help="Where to save the MP4.")] = None,
    server: ServerOpt = None,
    key: KeyOpt = None,
    poll: Annotated[float, typer.Option(help="Seconds between status checks.")] = 2.0,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Makes the submission safe to retry: one task, one charge."),
    ] = None,
) -> None:
    """Extend a video: the source followed by a new segment; show progress, then download."""
    with client_errors(server), Client(server, key) as client:
        submitted = client.extend(task_id, prompt, seconds=seconds, idempotency_key=idempotency_key)
        typer.echo(f"task {submitted.task_id} accepted (extends {task_id})", err=True)
        final = _wait_with_progress(client, submitted.task_id, poll)
        target = out or Path(f"{submitted.task_id}.mp4")
        _download_with_progress(client, final, target)
    typer.echo(f"saved {target} ({final.generation_time}s, {final.credits_used} credits)", err=True)


def _wait_with_progress(client: Client, task_id: str, poll: float) -> TaskStatus:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.fields[stage]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("generate", total=100, stage="queued")

        def on_progress(status: TaskStatus) -> None:
            stage = status.stage or status.status
            if status.queue_position:
                stage = f"queued #{status.queue_position}"
            progress.update(bar, completed=status.percent or 0, stage=stage)

        final = client.wait(task_id, on_progress=on_progress, poll_interval=poll)
        progress.update(bar, completed=100, stage="done")
    return final


def _download_with_progress(client: Client, status: TaskStatus, target: Path) -> None:
    with Progress(TextColumn("download"), BarColumn(), DownloadColumn(), console=console) as bar:
        job = bar.add_task("download", total=None)

        def on_bytes(done: int, total: int | None) -> None:
            bar.update(job, completed=done, total=total)

        client.download(status, target, on_bytes=on_bytes)


def status(
    task_id: Annotated[str, typer.Argument(help="Task id (task_…).")],
    server: ServerOpt = None,
    key: KeyOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The server's answer as one JSON line.")
    ] = False,
) -> None:
    """Show a task's status."""
    with client_errors(server), Client(server, key) as client:
        s = client.check_status(task_id)
    if as_json:
        typer.echo(json.dumps(s.raw))
        return
    # Plain lines, never wrapped: ids and URLs stay whole for copying.
    typer.echo(f"{s.task_id}: {s.status}")
    if s.status == "processing":
        typer.echo(
            f"  stage {s.stage}, {s.percent or 0:.0f}%"
            + (f", queue position {s.queue_position}" if s.queue_position else "")
        )
    elif s.status == "completed":
        typer.echo(f"  video: {s.video_url}")
        typer.echo(f"  {s.generation_time}s, {s.credits_used} credits")
    else:
        typer.echo(f"  {s.error_code}: {s.error}")
