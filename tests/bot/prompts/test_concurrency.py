"""Two schedulers on one PostgreSQL (two Runtime/Database objects, and two processes): every
prompt is sent exactly once, and the cap holds although both decide about the same people."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.internal.config import load_internal_settings
from bot.matcher import SimpleMatcher
from bot.prompts import configure
from bot.prompts.config import load_prompt_settings
from bot.prompts.models import PromptAction, PromptSend, PromptSkip
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.models import OutboxMessage
from tests.auxil.senders import add_channels
from tests.bot.prompts.conftest import SetClock, add_contact, shop_event
from tests.conftest import REPO

PROMPTS = """
prompts:
  - id: offer_one
    purpose: marketing
    priority: 20
    trigger: {event: lapsed}
    quiet_hours: false
    response: utter_prompt_miss_you_a
  - id: offer_two
    purpose: marketing
    priority: 10
    trigger: {event: lapsed}
    quiet_hours: false
    response: utter_prompt_miss_you_b
  - id: offer_three
    purpose: marketing
    priority: 5
    trigger: {event: lapsed}
    quiet_hours: false
    response: utter_prompt_win_back
"""
NOW = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
# no scheduler loops: the tests run the rounds themselves
QUIET = {
    "prompts": load_prompt_settings(scheduler=False),
    "internal": load_internal_settings(scheduler=False),
}


async def _runtime(settings: Settings, path: Path) -> Runtime:
    nlu = SimpleMatcher.from_folder(REPO / "nlu_data", threshold=0.3)
    rt = Runtime(settings, clock=SetClock(NOW), nlu=nlu, start_worker=False)
    add_channels(rt)
    await rt.start(migrate=False)
    configure(rt, file=path, scheduler=False, batch_size=7)
    return rt


async def _seed(rt: Runtime, n: int) -> list[int]:
    people = [await add_contact(rt) for _ in range(n)]
    for cid in people:
        await shop_event(rt, cid, "lapsed")  # three offers each, all due now
    return people


async def _check(rt: Runtime, people: list[int]) -> None:
    async with rt.db.session() as s:
        keys = list((await s.execute(select(OutboxMessage.idempotency_key))).scalars())
        sends = Counter((await s.execute(select(PromptSend.action_id))).scalars())
        skipped = list((await s.execute(select(PromptSkip.reason))).scalars())
        statuses = Counter((await s.execute(select(PromptAction.status))).scalars())
        per_person = Counter((await s.execute(select(OutboxMessage.contact_id))).scalars())
        total = (await s.execute(select(func.count()).select_from(PromptAction))).scalar_one()
    assert len(keys) == len(set(keys)) == 2 * len(people)  # never twice, cap 2 each
    assert all(n == 1 for n in sends.values())
    assert set(per_person.values()) == {2} and set(per_person) == set(people)
    assert skipped == ["capped"] * len(people)
    assert statuses == {"sent": 2 * len(people), "skipped": len(people)} and total == 3 * len(
        people
    )


@pytest.mark.postgres
async def test_two_scheduler_runtimes_send_each_prompt_exactly_once(
    pg_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(textwrap.dedent(PROMPTS), encoding="utf-8")
    settings = make_settings(pg_url, **QUIET)
    a, b = await _runtime(settings, path), await _runtime(settings, path)
    try:
        people = await _seed(a, 60)
        from bot.prompts import service_of

        one, two = await asyncio.gather(
            service_of(a).process_due(NOW), service_of(b).process_due(NOW)
        )
        assert one.batches > 0 and two.batches > 0  # both took part
        assert one.sent + two.sent == 120
        await _check(a, people)
        # a later round of either finds nothing left to do
        again = await service_of(b).process_due(NOW)
        assert again.processed == 0
    finally:
        await a.stop()
        await b.stop()


@pytest.mark.postgres
async def test_two_scheduler_processes_send_each_prompt_exactly_once(
    pg_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    path = tmp_path / "prompts.yml"
    path.write_text(textwrap.dedent(PROMPTS), encoding="utf-8")
    rt = await _runtime(make_settings(pg_url, **QUIET), path)
    try:
        people = await _seed(rt, 80)
        script = textwrap.dedent(
            f"""
            import asyncio, sys
            from datetime import datetime
            from bot.prompts import configure
            from bot.runtime import Runtime
            from bot.settings import Settings
            from tests.auxil.senders import add_channels
            from tests.bot.prompts.conftest import SetClock

            async def main():
                now = datetime.fromisoformat({NOW.isoformat()!r})
                s = Settings(_env_file=None, database_url={pg_url!r}, secret_key="t",
                             content_dir={str(REPO)!r})
                rt = Runtime(s, clock=SetClock(now), start_worker=False)
                add_channels(rt)
                svc = configure(rt, file={str(path)!r}, scheduler=False, batch_size=5)
                stats = await svc.process_due(now)
                await rt.db.dispose()
                print(stats.sent, stats.batches)

            asyncio.run(main())
            """
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        sent = [int(out.split()[0]) for out, _ in outs]
        assert sum(sent) == 160
        await _check(rt, people)
    finally:
        await rt.stop()
