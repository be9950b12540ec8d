"""Put tasks into known states at known times, for the operator views' tests."""

from __future__ import annotations

from sqlalchemy import update

from reel.db.models import ApiKey, LedgerEntry, Task
from reel.service import ledger, tasks
from reel.service.context import Services
from reel.types import Aspect, Mode, TaskStatus, Tier


def key_row(services: Services, key_id: str) -> ApiKey:
    with services.db.read() as session:
        key = session.get(ApiKey, key_id)
        assert key is not None
        return key


def submit(
    services: Services,
    key_id: str,
    *,
    tier: Tier = Tier.SORA2,
    duration_s: int = 10,
    prompt: str = "a fox",
    at: float | None = None,
) -> str:
    cmd = tasks.NewTask(
        prompt=prompt,
        mode=Mode.TEXT_TO_VIDEO,
        tier=tier,
        aspect=Aspect.LANDSCAPE,
        duration_s=duration_s,
    )
    task_id = tasks.create(services, key_row(services, key_id), cmd).id
    if at is not None:
        with services.db.write() as session:
            session.execute(update(Task).where(Task.id == task_id).values(created_at=at))
            session.execute(
                update(LedgerEntry).where(LedgerEntry.task_id == task_id).values(created_at=at)
            )
    return task_id


def finish(
    services: Services,
    task_id: str,
    status: TaskStatus,
    *,
    at: float,
    engine: str = "sandbox",
    seconds: float | None = None,
) -> None:
    """Move a task straight to a final state (as a worker would), refunding failures."""
    with services.db.write() as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(
                status=status,
                engine=engine,
                finished_at=at,
                started_at=at - (seconds or 1),
                generation_seconds=seconds if status == TaskStatus.COMPLETED else None,
                video_key=f"videos/{task_id}-a1.mp4" if status == TaskStatus.COMPLETED else None,
                error_code=None if status == TaskStatus.COMPLETED else "GENERATION_FAILED",
                error_message=None if status == TaskStatus.COMPLETED else "engine exploded",
            )
        )
        if status != TaskStatus.COMPLETED:
            refund = ledger.refund_task(session, task_id, note="failed")
            assert refund is not None
            session.execute(
                update(LedgerEntry).where(LedgerEntry.id == refund.id).values(created_at=at)
            )


PROMPTS = (
    "A lighthouse in a storm, waves crashing, cinematic",
    "Macro shot of dew on a spider web at sunrise",
    "A red fox trotting through fresh snow",
    "Timelapse of clouds over a mountain ridge",
    "A paper boat drifting down a rainy street",
    "Neon city at night seen from a moving train",
)


def seed_history(services: Services, key_ids: list[str], *, days: int, until: float) -> int:
    """Finished tasks spread over the ``days`` before ``until`` (deterministic); returns count."""
    made = 0
    tiers = (Tier.SORA2, Tier.PRO_STANDARD, Tier.PRO_HIGH)
    for back in range(days, 0, -1):
        at = until - back * 86_400
        for n in range(2 + (back * 7) % 5):
            tier = tiers[(back + n) % 5 % 3]
            key = key_ids[(back + n) % len(key_ids)]
            task_id = submit(
                services, key, tier=tier, prompt=PROMPTS[(back + n) % len(PROMPTS)], at=at
            )
            failed = (back + n) % 6 == 0
            finish(
                services,
                task_id,
                TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
                at=at + 30 + n,
                seconds=2.0 + (back * 3 + n * 5) % 11,
                engine="sandbox",
            )
            made += 1
    return made
