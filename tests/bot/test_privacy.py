"""Data protection: ``concierge contacts export|erase`` on SQLite and PostgreSQL.

A person writes on Telegram, is linked to a shop user with an e-mail address, has shop events,
a handoff with a staff reply, feedback and queued messages. Export shows all of it; erase
without --yes changes nothing; with --yes no text column of any table holds their words or
identifiers any more, who erased whom is recorded, and their next message starts a new contact.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, Text, select, update
from typer.testing import CliRunner

import bot.storage.registry  # noqa: F401
from bot.cli import app
from bot.contacts import link_user
from bot.handoff import service_of
from bot.lifecycle.schema import EventIn
from bot.lifecycle.service import service_of as lifecycle_of
from bot.privacy import purge_transcripts
from bot.runtime import Runtime
from bot.staff import StaffAction
from bot.storage.models import Base, Contact, Identity, Message
from bot.types import Inbound

CHAT = "770011223"
NAME = "Zebulonia Quarkwright"
EMAIL = "zebulonia.q@example.org"
USER = "shopuser-55219"
WORDS = "my parcel 88412 never arrived at Quarkstrasse 7"
runner = CliRunner()


async def cli(*args: str, url: str) -> Any:
    return await asyncio.to_thread(
        runner.invoke, app, [*args, "--database-url", url], catch_exceptions=False
    )


async def texts_everywhere(rt: Runtime) -> str:
    """Every String/Text/JSON value of every table, as one string."""
    parts: list[str] = []
    async with rt.db.session() as s:
        for table in Base.metadata.sorted_tables:
            cols = [
                c
                for c in table.c
                if isinstance(c.type, String | Text | JSON) or "JSON" in repr(c.type)
            ]
            if not cols:
                continue
            for row in (await s.execute(select(*cols))).all():
                parts.extend(json.dumps(v, default=str) for v in row if v is not None)
    return "\n".join(parts)


async def make_person(rt: Runtime) -> int:
    tg = dict(channel="telegram", external_id=CHAT, address=CHAT, display_name=NAME)
    await rt.engine.handle(Inbound(text="hello", **tg), deliver_inline=False)  # type: ignore[arg-type]
    async with rt.db.session() as s:
        ident = (await s.execute(select(Identity).where(Identity.external_id == CHAT))).scalar_one()
        contact = await link_user(s, ident, USER, rt.clock.now())
        contact.email = EMAIL
        cid = contact.id
    await lifecycle_of(rt).ingest(
        [
            EventIn(
                id="ord-88412",
                type="purchased",
                user_id=USER,
                occurred_at=datetime.now(UTC) - timedelta(days=3),
                properties={"order_id": "88412", "amount": 30, "street": "Quarkstrasse 7"},
            )
        ]
    )
    await rt.engine.handle(Inbound(text="I want to talk to a human", **tg))  # type: ignore[arg-type]
    await rt.engine.handle(Inbound(text=WORDS, **tg))  # type: ignore[arg-type]
    async with rt.db.session() as s:
        from bot.handoff.models import Handoff

        hid = (await s.execute(select(Handoff.id).where(Handoff.contact_id == cid))).scalar_one()
        await s.execute(
            update(Message)
            .where(Message.contact_id == cid, Message.direction == "out")
            .values(feedback="not_helpful")
        )
    svc = service_of(rt)
    assert (
        await svc.staff.reply(
            handoff_id=hid, staff="Anna", text="About 88412: sorry!", source="inbox"
        )
        == "sent"
    )
    assert (
        await svc.staff.reply(
            handoff_id=hid, staff="Anna", text="// note on Quarkstrasse 7", source="inbox"
        )
        == "internal"
    )
    return cid


async def test_export_then_erase_leaves_nothing_of_the_person(runtime: Runtime) -> None:
    url = runtime.settings.database_url
    cid = await make_person(runtime)

    r = await cli("contacts", "export", f"telegram:{CHAT}", url=url)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["contact"]["id"] == cid and doc["contact"]["email"] == EMAIL
    assert [i["external_id"] for i in doc["identities"]] == [CHAT]
    assert any(m["text"] == WORDS for m in doc["messages"])
    assert doc["lifecycle_events"][0]["event_id"] == "ord-88412"
    assert doc["stage_transitions"] and doc["handoffs"] and doc["outbox"]
    assert doc["feedback"] and doc["feedback"][0]["feedback"] == "not_helpful"
    for ref in (str(cid), f"user:{USER}", f"email:{EMAIL.upper()}"):
        again = await cli("contacts", "export", ref, url=url)
        assert json.loads(again.stdout)["contact"]["id"] == cid

    before = await texts_everywhere(runtime)
    for secret in (NAME, EMAIL, USER, CHAT, "88412", "Quarkstrasse"):
        assert secret in before
    r = await cli("contacts", "erase", f"user:{USER}", url=url)
    assert r.exit_code == 1 and "Nothing changed" in r.output
    assert await texts_everywhere(runtime) == before

    r = await cli("contacts", "erase", f"user:{USER}", "--yes", url=url)
    assert r.exit_code == 0, r.output
    assert f"contact {cid} erased" in r.output
    after = await texts_everywhere(runtime)
    for secret in (NAME, EMAIL, USER, CHAT, "88412", "Quarkstrasse"):
        assert secret not in after, secret
    async with runtime.db.session() as s:
        assert await s.get(Contact, cid) is None
        log = (
            await s.execute(select(StaffAction).where(StaffAction.action == "erase"))
        ).scalar_one()
        assert log.contact_id == cid and log.staff_name.startswith("cli:")
        assert log.detail["rows"]["messages"] >= 4

    # the next message starts a new contact
    await runtime.engine.handle(
        Inbound(channel="telegram", external_id=CHAT, address=CHAT, text="hello again")
    )
    async with runtime.db.session() as s:
        new = (
            await s.execute(select(Contact).join(Identity).where(Identity.external_id == CHAT))
        ).scalar_one()
        # (SQLite may give the new row the freed number: the person is new all the same)
        assert new.public_id != doc["contact"]["public_id"]
        assert new.user_id is None and new.email is None and new.display_name is None
    r = await cli("contacts", "export", f"user:{USER}", url=url)
    assert r.exit_code == 1 and "nobody" in r.output


async def test_unknown_reference_says_which_kinds_exist(runtime: Runtime) -> None:
    url = runtime.settings.database_url
    for ref in ("phone:123", "telegram:", "bob"):
        r = await cli("contacts", "erase", ref, "--yes", url=url)
        assert r.exit_code == 2
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "telegram:<chat id>" in lines[0] and "email:" in lines[0]


async def test_retention_deletes_old_transcripts_only(runtime: Runtime) -> None:
    await runtime.engine.handle(Inbound(channel="telegram", external_id="1", text="hello"))
    async with runtime.db.session() as s:
        await s.execute(update(Message).values(created_at=datetime.now(UTC) - timedelta(days=40)))
    await runtime.engine.handle(Inbound(channel="telegram", external_id="1", text="new one"))
    async with runtime.db.session() as s:
        gone = await purge_transcripts(s, before=datetime.now(UTC) - timedelta(days=30))
    assert gone >= 2
    async with runtime.db.session() as s:
        left = list(
            (await s.execute(select(Message.text).where(Message.direction == "in"))).scalars()
        )
    assert left == ["new one"]
