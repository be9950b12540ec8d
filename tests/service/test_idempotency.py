"""Idempotency records: replay, conflicts, stale claims, and the guarded completion."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from reel.db.models import Task
from reel.service import idempotency, keys, tasks
from reel.service.context import Services
from reel.service.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidParameter
from reel.types import Aspect, Mode, Tier
from tests.factories import make_key

T2V = tasks.NewTask("A fox", Mode.TEXT_TO_VIDEO, Tier.SORA2, Aspect.PORTRAIT, 10)


def begin(services: Services, key_id: str, body: object) -> idempotency.Replay | idempotency.Claim:
    return idempotency.begin(
        services,
        key_id=key_id,
        route="POST /x",
        idempotency_key="k",
        body_hash=idempotency.fingerprint(body),
    )


def test_fingerprint_is_canonical() -> None:
    assert idempotency.fingerprint({"a": 1, "b": [1, 2]}) == idempotency.fingerprint(
        {"b": [1, 2], "a": 1}
    )
    assert idempotency.fingerprint({"a": 1}) != idempotency.fingerprint({"a": "1"})


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\there", "é"])
def test_bad_keys(value: str) -> None:
    with pytest.raises(InvalidParameter):
        idempotency.validate_key(value)


def test_lifecycle_of_a_record(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = make_key(services, credits=100)
    with services.db.read() as session:
        key = keys.get(session, issued.id)
    claim = begin(services, issued.id, {"a": 1})
    assert isinstance(claim, idempotency.Claim)
    with pytest.raises(IdempotencyInProgress):
        begin(services, issued.id, {"a": 1})
    with pytest.raises(IdempotencyKeyReused):
        begin(services, issued.id, {"a": 2})

    # The request "died": after STALE_AFTER another one takes the claim over, and the first
    # owner can no longer commit (its task insert and charge roll back with it).
    clock = idempotency.now()
    monkeypatch.setattr(idempotency, "now", lambda: clock + idempotency.STALE_AFTER + 1)
    takeover = begin(services, issued.id, {"a": 1})
    assert isinstance(takeover, idempotency.Claim) and takeover.owner != claim.owner

    def complete_with(c: idempotency.Claim) -> tasks.OnInsert:
        def hook(session: Session, task: Task) -> None:
            c.complete(session, task_id=task.id, status=200, body=json.dumps({"id": task.id}))

        return hook

    with pytest.raises(IdempotencyInProgress):
        tasks.create(services, key, T2V, on_insert=complete_with(claim))
    with services.db.read() as session:
        assert keys.get(session, issued.id).balance == 100  # rolled back: nothing charged
    task = tasks.create(services, key, T2V, on_insert=complete_with(takeover))
    replay = begin(services, issued.id, {"a": 1})
    assert isinstance(replay, idempotency.Replay)
    assert (replay.status, replay.task_id) == (200, task.id)

    # Expired records are forgotten: the key starts over.
    monkeypatch.setattr(idempotency, "now", lambda: clock + services.settings.idempotency_ttl + 10)
    assert isinstance(begin(services, issued.id, {"a": 3}), idempotency.Claim)
