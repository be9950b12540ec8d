"""The credits ledger: guarded charges, exactly-once refunds, balance = sum of entries."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from reel.db.models import ApiKey, LedgerEntry, Task
from reel.service import keys, ledger
from reel.service.context import Services
from reel.service.errors import InsufficientCredits, InvalidParameter, LoginRequired
from tests.factories import make_key


def _task(session: object, key_id: str, task_id: str) -> None:
    session.add(
        Task(
            id=task_id,
            key_id=key_id,
            status="queued",
            mode="textToVideo",  # type: ignore[attr-defined]
            tier="sora2",
            model="sandbox",
            aspect="portrait",
            duration_s=10,
            width=8,
            height=8,
            prompt="p",
            credits=1,
            created_at=0.0,
        )
    )
    session.flush()  # type: ignore[attr-defined]


def test_charge_refund_exactly_once(services: Services) -> None:
    issued = make_key(services, credits=10)
    with services.db.write() as s:
        _task(s, issued.id, "t1")
        assert ledger.charge_task(s, issued.id, "t1", 4).balance_after == 6
        assert ledger.refund_task(s, "t1") is not None
        assert ledger.refund_task(s, "t1") is None
    with services.db.read() as s:
        assert s.get(ApiKey, issued.id).balance == 10  # type: ignore[union-attr]


def test_charge_never_overdraws(services: Services) -> None:
    issued = make_key(services, credits=3)
    with pytest.raises(InsufficientCredits) as info, services.db.write() as s:
        _task(s, issued.id, "t1")
        ledger.charge_task(s, issued.id, "t1", 4)
    assert info.value.extra["requiredCredits"] == 4
    with services.db.read() as s:
        assert s.get(ApiKey, issued.id).balance == 3  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(Task)) == 0  # rolled back whole


def test_second_charge_for_a_task_is_refused(services: Services) -> None:
    issued = make_key(services, credits=10)
    with pytest.raises(IntegrityError), services.db.write() as s:
        _task(s, issued.id, "t1")
        ledger.charge_task(s, issued.id, "t1", 1)
        ledger.charge_task(s, issued.id, "t1", 1)


def test_refund_of_uncharged_task_is_noop(services: Services) -> None:
    issued = make_key(services, credits=1)
    with services.db.write() as s:
        _task(s, issued.id, "t1")
        assert ledger.refund_task(s, "t1") is None


def test_grant_and_adjust_validation(services: Services) -> None:
    issued = make_key(services, credits=0)
    with services.db.write() as s:
        with pytest.raises(InvalidParameter):
            ledger.grant(s, issued.id, 0)
        assert ledger.grant(s, issued.id, 5).balance_after == 5
        with pytest.raises(InsufficientCredits):
            ledger.adjust(s, issued.id, -6)
        assert ledger.adjust(s, issued.id, -5).balance_after == 0


def test_keys_stored_as_hashes(services: Services) -> None:
    issued = make_key(services, credits=0)
    with services.db.read() as s:
        row = s.get(ApiKey, issued.id)
        assert row is not None
        assert issued.key not in (row.key_hash, row.prefix, row.name)
        assert issued.key.startswith(keys.KEY_PREFIX)
        assert keys.authenticate(s, issued.key).id == issued.id
        with pytest.raises(LoginRequired):
            keys.authenticate(s, issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B"))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["grant", "charge", "refund"]), st.integers(1, 50)), max_size=25
    )
)
def test_balance_equals_sum_of_entries(services: Services, ops: list[tuple[str, int]]) -> None:
    issued = make_key(services, credits=0)
    charged: list[str] = []
    for n, (op, amount) in enumerate(ops):
        with services.db.write() as s:
            if op == "grant":
                ledger.grant(s, issued.id, amount)
            elif op == "charge":
                tid = f"{issued.id}-{n}"
                _task(s, issued.id, tid)
                try:
                    with s.begin_nested():
                        ledger.charge_task(s, issued.id, tid, amount)
                    charged.append(tid)
                except InsufficientCredits:
                    pass
            elif charged:
                ledger.refund_task(s, charged[amount % len(charged)])
    with services.db.read() as s:
        total = s.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.key_id == issued.id
            )
        )
        balance = s.get(ApiKey, issued.id).balance  # type: ignore[union-attr]
    assert balance == total and balance >= 0
