"""A Hypothesis state machine over the real services: grants, creations, cancels, failures,
completions and reaps in random order. The ledger must always add up and never go negative."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select, update

from reel.config import Settings
from reel.db.models import ApiKey, LedgerEntry, Task
from reel.queue import claim_next
from reel.service import ledger, lifecycle, tasks
from reel.service.context import build_services, prepare_database
from reel.service.errors import ActiveTaskLimit, InsufficientCredits
from reel.types import Aspect, Mode, TaskStatus, Tier
from tests.factories import make_key

TIERS = [Tier.SORA2, Tier.PRO_STANDARD]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        root = Path(tempfile.mkdtemp(prefix="reel-ledger-"))
        self.services = build_services(Settings(data_dir=root, max_active_tasks_per_key=6))
        prepare_database(self.services)
        self.key_id = make_key(self.services, credits=0).id
        self.granted = 0
        self.task_ids: list[str] = []

    def teardown(self) -> None:
        self.services.close()

    def _key(self) -> ApiKey:
        with self.services.db.read() as s:
            key = s.get(ApiKey, self.key_id)
            assert key is not None
            return key

    @rule(amount=st.integers(1, 80))
    def grant(self, amount: int) -> None:
        with self.services.db.write() as s:
            ledger.grant(s, self.key_id, amount)
        self.granted += amount

    @rule(tier=st.sampled_from(TIERS), duration=st.sampled_from([10, 15]))
    def create(self, tier: Tier, duration: int) -> None:
        cmd = tasks.NewTask(
            prompt="p",
            mode=Mode.TEXT_TO_VIDEO,
            tier=tier,
            aspect=Aspect.PORTRAIT,
            duration_s=duration,
        )
        try:
            self.task_ids.append(tasks.create(self.services, self._key(), cmd).id)
        except (InsufficientCredits, ActiveTaskLimit):
            pass

    @precondition(lambda self: bool(self.task_ids))
    @rule(i=st.integers(0, 1000))
    def cancel(self, i: int) -> None:
        try:
            tasks.cancel(self.services, self._key(), self.task_ids[i % len(self.task_ids)])
        except tasks.TaskNotCancelable:
            pass

    def _claim(self) -> Task | None:
        with self.services.db.write() as s:
            return claim_next(s, worker_id="w", models=["sandbox"], lease_until=time.time() + 60)

    @rule(retryable=st.booleans())
    def fail_next(self, retryable: bool) -> None:
        task = self._claim()
        if task is not None:
            with self.services.db.write() as s:
                lifecycle.fail(
                    s,
                    lifecycle.lease_of(task),
                    code="GENERATION_FAILED",
                    message="x",
                    retryable=retryable,
                )

    @rule()
    def complete_next(self) -> None:
        task = self._claim()
        if task is not None:
            with self.services.db.write() as s:
                lifecycle.complete(
                    s, lifecycle.lease_of(task), video_key="v", engine="e", generation_seconds=1
                )

    @rule()
    def crash_and_reap(self) -> None:
        task = self._claim()
        if task is not None:
            with self.services.db.write() as s:
                s.execute(update(Task).where(Task.id == task.id).values(lease_until=0))
                lifecycle.reap(s, max_queue_wait=3600)

    @invariant()
    def ledger_adds_up(self) -> None:
        with self.services.db.read() as s:
            balance = s.scalar(select(ApiKey.balance).where(ApiKey.id == self.key_id))
            by_kind = dict(
                s.execute(
                    select(LedgerEntry.kind, func.sum(LedgerEntry.amount)).group_by(
                        LedgerEntry.kind
                    )
                ).all()
            )
            rows = s.execute(select(Task.id, Task.status, Task.credits)).all()
            per_task = s.execute(
                select(LedgerEntry.task_id, LedgerEntry.kind, LedgerEntry.amount).where(
                    LedgerEntry.task_id.is_not(None)
                )
            ).all()
        charges = -(by_kind.get("charge") or 0)
        refunds = by_kind.get("refund") or 0
        assert by_kind.get("grant", 0) == self.granted
        assert balance == self.granted - charges + refunds
        assert balance is not None and balance >= 0
        kinds: dict[str, list[str]] = {}
        for task_id, kind, _amount in per_task:
            kinds.setdefault(task_id, []).append(kind)
        for task_id, status, credits in rows:
            expected = (
                ["charge", "refund"]
                if status in (TaskStatus.FAILED, TaskStatus.CANCELED)
                else ["charge"]
            )
            assert sorted(kinds[task_id]) == expected, (task_id, status)
            assert credits > 0


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
