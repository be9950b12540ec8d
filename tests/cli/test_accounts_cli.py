"""`reel keys create --account`, `reel accounts list|show|limits`, `reel usage export` and
`reel audit list` on one database."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reel.cli.app import app


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REEL_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout

    return invoke


def _json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_two_keys_one_account_limits_export_and_audit(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("keys", "create", "--name", "acme", "--credits", "50", "--json")
    assert code == 0, out
    first = _json(out)
    assert {"key", "id", "account"} <= set(first)
    account = str(first["account"])
    code, out = run(
        "keys", "create", "--name", "acme-ci", "--account", account, "--credits", "5", "--json"
    )
    assert code == 0, out
    assert _json(out)["account"] == account

    code, out = run("credits", "add", account, "10", "--note", "invoice 9")
    assert code == 0, out
    code, out = run("accounts", "list", "--json")
    listed = [json.loads(line) for line in out.strip().splitlines()]
    assert [(a["id"], a["credits"], a["keys"]) for a in listed] == [(account, 65, 2)]

    code, out = run("accounts", "limits", account, "--daily-credits", "20", "--json")
    assert code == 0 and _json(out)["dailyCredits"] == 20
    code, out = run("accounts", "limits", account, "--daily-credits", "-1", "--json")
    assert _json(out)["dailyCredits"] is None

    code, out = run("accounts", "show", account, "--json")
    shown = _json(out)
    assert shown["credits"] == 65 and len(shown["keys"]) == 2  # type: ignore[arg-type]

    code, out = run("usage", "export", "--account", account, "--format", "csv")
    assert code == 0, out
    assert next(csv.reader(io.StringIO(out)))[0] == "taskId"
    code, out = run("usage", "export", "--account", account, "--format", "json")
    assert json.loads(out)["totalCredits"] == 0

    code, out = run("audit", "list", "--json")
    actions = [json.loads(line)["action"] for line in out.strip().splitlines()]
    assert actions == [
        "account.limits",
        "account.limits",
        "credits.grant",
        "key.create",
        "key.create",
    ]


def test_unknown_account_is_one_line_error(run) -> None:  # type: ignore[no-untyped-def]
    code, _ = run("keys", "create", "--name", "x", "--account", "acct_nope")
    assert code == 1
    code, _ = run("accounts", "show", "acct_nope")
    assert code == 1
    code, _ = run("usage", "export", "--account", "acct_nope")
    assert code == 1
