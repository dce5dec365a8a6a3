"""bot.internal.files: update files in, scheduling and cancelling, an audience's preview."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.internal.models import Update
from bot.internal.service import InternalService
from bot.runtime import Runtime
from tests.bot.internal.conftest import Content


async def test_a_file_is_loaded_once_and_changes_follow_until_it_is_sent(
    rt: Runtime, svc: InternalService, content: Content
) -> None:
    path = content.update("menu", "title: Lunch menu\naudience: everyone")
    keys, errors = await svc.sync_files()
    assert (keys, errors) == (["menu"], [])
    assert await svc.sync_files_if_changed() is True  # first look: remembered
    assert await svc.sync_files_if_changed() is False  # nothing changed since
    path.write_text(path.read_text().replace("Lunch menu", "New lunch menu"))
    await svc.sync_files()
    async with rt.db.session() as s:
        u = (await s.execute(select(Update).where(Update.key == "menu"))).scalar_one()
    assert (u.title, u.status) == ("New lunch menu", "draft")  # no schedule: a draft


async def test_schedule_and_cancel(
    rt: Runtime, svc: InternalService, content: Content, clock: ManualClock
) -> None:
    content.update("menu", "title: Lunch menu\naudience: everyone")
    await svc.sync_files()
    u = await svc.schedule("menu", None)  # now
    assert (u.status, u.not_before) == ("scheduled", clock.now())
    with pytest.raises(LookupError):
        await svc.schedule("nothing", None)
    assert await svc.cancel("menu") == 0  # nothing planned yet
    with pytest.raises(ValueError, match="cancelled"):
        await svc.schedule("menu", "2026-01-06 10:00")


async def test_preview_names_who_an_audience_reaches(svc: InternalService) -> None:
    res = await svc.preview("department:sales")
    assert sorted(e.slack_user_id for e in res.employees) == ["U04DAN", "U05EVA"]
