"""The `reel` command as a user meets it: one data dir, one-line errors, copyable output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from reel.cli.app import app
from reel.config import Settings


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal
    return CliRunner()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_default_data_dir_is_per_user_whatever_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REEL_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    seen = set()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        seen.add(Settings().data_dir)
    assert seen == {tmp_path / "xdg" / "reel"}
    monkeypatch.setenv("REEL_DATA_DIR", str(tmp_path / "mine"))
    assert Settings().data_dir == tmp_path / "mine"  # REEL_DATA_DIR still wins


@pytest.mark.parametrize("args", [["status", "task_x"], ["generate", "a fox", "--poll", "0.1"]])
def test_an_unreachable_server_is_one_line_without_traceback(args: list[str]) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "reel", *args, "--server", server, "--key", "sk-reel-x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"error: could not reach a Reel server at {server} (connection refused); check that "
        "`reel serve` is running there, or pass --server / set REEL_SERVER"
    ]


def test_a_refused_request_names_its_code_once(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reel.client import TaskNotFoundError

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise TaskNotFoundError(
            "Task not found", status_code=404, error_code="TASK_NOT_FOUND", request_id="req_1"
        )

    monkeypatch.setattr("reel.client.Client.check_status", refuse)
    result = runner.invoke(app, ["status", "task_x"])
    assert result.exit_code == 1
    assert result.stderr == "error: TASK_NOT_FOUND: Task not found (request req_1)\n"


def test_an_unwritable_output_file_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "out.mp4"))

    monkeypatch.setattr("reel.client.Client.generate", refuse)
    result = runner.invoke(app, ["generate", "a fox", "--out", str(tmp_path / "out.mp4")])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write {tmp_path / 'out.mp4'}: Permission denied\n"


def test_database_commands_say_which_database_once(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"using database {(tmp_path / 'data' / 'reel.db').resolve()}\n"


def test_ids_and_urls_are_never_cut_and_listings_have_json(runner: CliRunner) -> None:
    url = "https://1.1.1.1/hooks/a/rather/long/path/that/would/not/fit/in/sixty/columns"
    made = json.loads(
        runner.invoke(
            app, ["keys", "create", "--name", "n" * 40, "--credits", "5", "--json"]
        ).stdout.strip()
    )
    assert runner.invoke(app, ["keys", "webhook", made["id"], url]).exit_code == 0
    table = runner.invoke(app, ["keys", "list"]).stdout
    assert made["id"] in table and url in table
    listed = [
        json.loads(line)
        for line in runner.invoke(app, ["keys", "list", "--json"]).stdout.splitlines()
    ]
    assert [(k["id"], k["credits"], k["webhookUrl"]) for k in listed] == [(made["id"], 5, url)]
    shown = json.loads(runner.invoke(app, ["credits", "show", made["id"], "--json"]).stdout)
    assert shown["credits"] == 5 and shown["ledger"][0]["kind"] == "grant"
    for listing in (["webhooks", "list", "--json"], ["queue", "--json"], ["workers", "--json"]):
        result = runner.invoke(app, listing)
        assert result.exit_code == 0, (listing, result.output)


def test_an_unknown_key_is_one_line(runner: CliRunner) -> None:
    result = runner.invoke(app, ["credits", "add", "key_missing", "1"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert len(result.stderr.splitlines()) == 2  # the database notice, then the error


def _commands(command: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, [*path, name])
    return found


def test_help_shows_plain_value_names(runner: CliRunner) -> None:
    paths = _commands(get_command(app), [])
    assert ["keys", "list"] in paths and ["serve"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout and "<str>" not in result.stdout, path
        assert "<int>" not in result.stdout and "<path>" not in result.stdout, path
    assert "--port" in runner.invoke(app, ["serve", "--help"]).stdout
    assert "INTEGER" in runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "120"}).stdout
