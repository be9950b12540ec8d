"""`reel verify FILE`: the C2PA manifest a file carries and whether it validates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reel.media.provenance import ProvenanceError, read_manifest

FileArg = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A video or image.")
]
TrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust",
        exists=True,
        dir_okay=False,
        help="PEM file of root certificates to trust (e.g. your own CA, or the C2PA trust list).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="The whole manifest store as JSON.")]


def verify(file: FileArg, trust: TrustOpt = None, as_json: JsonOpt = False) -> None:
    """Print FILE's C2PA manifest summary and validation state.

    Exit status: 0 for Valid or Trusted, 1 for Invalid, 2 when the file has no manifest.
    """
    try:
        summary = read_manifest(file, trust_anchors_pem=trust.read_text() if trust else None)
    except ProvenanceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if summary is None:
        typer.echo(f"{file}: no C2PA manifest")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(summary.raw, indent=2))
    else:
        lines = [
            f"file:        {file}",
            f"validation:  {summary.validation_state}",
            f"signed by:   {summary.signer} ({summary.issuer})",
            f"signed at:   {summary.signed_at or 'not timestamped'}",
            f"generator:   {summary.claim_generator}",
        ]
        for action in summary.actions:
            agent = action.get("softwareAgent")
            name = agent.get("name") if isinstance(agent, dict) else agent
            lines.append(f"action:      {action.get('action')}  by {name or '?'}")
            source = action.get("digitalSourceType")
            if source:
                lines.append(f"  source:    {str(source).rsplit('/', 1)[-1]}")
        lines += [f"ingredient:  {title}" for title in summary.ingredients]
        lines += [f"status:      {code}" for code in summary.status_codes]
        typer.echo("\n".join(lines))
    if summary.validation_state not in ("Valid", "Trusted"):
        raise typer.Exit(1)
