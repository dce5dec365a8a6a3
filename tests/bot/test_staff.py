"""Staff accounts: argon2id hashes, login by name or e-mail, disabled accounts, and the web
inbox counting as "a person can answer" once somebody has an account."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.clock import utcnow
from bot.handoff import service_of
from bot.runtime import Runtime
from bot.settings import Settings
from bot.staff import StaffError, authenticate, create_account, refresh_staff_count


async def test_accounts_hash_log_in_and_make_the_inbox_reachable(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = Runtime(make_settings(db_url, handoff_hours="mon-sun 00:00-23:59"), start_worker=False)
    await rt.start(migrate=False)
    try:
        handoff = service_of(rt)
        assert not handoff.staff_reachable(utcnow())  # no Slack, no password, no account
        async with rt.db.session() as s:
            acc = await create_account(
                s,
                name="Olga",
                email="Olga@Shop.example",
                password="long enough pw",
                role="owner",
                now=utcnow(),
            )
            assert acc.password_hash.startswith("$argon2id$")
            assert "long enough pw" not in acc.password_hash
            with pytest.raises(StaffError, match="exists already"):
                await create_account(
                    s,
                    name="olga",
                    email="x@y.example",
                    password="long enough pw",
                    role="agent",
                    now=utcnow(),
                )
            with pytest.raises(StaffError, match="at least 10"):
                await create_account(
                    s,
                    name="Kurt",
                    email="k@y.example",
                    password="short",
                    role="agent",
                    now=utcnow(),
                )
        async with rt.db.session() as s:
            assert (await authenticate(s, "olga@shop.example", "long enough pw")) is not None
            assert (await authenticate(s, "OLGA", "long enough pw")) is not None
            assert (await authenticate(s, "olga", "wrong")) is None
            assert (await authenticate(s, "nobody", "long enough pw")) is None
        assert await refresh_staff_count(rt) == 1
        assert handoff.staff_reachable(utcnow())
        async with rt.db.session() as s:
            acc2 = await authenticate(s, "olga", "long enough pw")
            assert acc2 is not None
            acc2.disabled = True
        async with rt.db.session() as s:
            assert (await authenticate(s, "olga", "long enough pw")) is None
        assert await refresh_staff_count(rt) == 0
    finally:
        await rt.stop()


def test_cli_staff_add_and_list(sqlite_url: str) -> None:
    runner = CliRunner()
    args = ["staff", "add", "--name", "Alex", "--email", "alex@shop.example", "--role", "agent"]
    r = runner.invoke(
        app, [*args, "--database-url", sqlite_url], input="pw-long-enough\npw-long-enough\n"
    )
    assert r.exit_code == 0, r.output
    assert "staff account 1 (Alex, agent) created" in r.output
    r = runner.invoke(app, [*args, "--database-url", sqlite_url, "--password", "pw-long-enough"])
    assert r.exit_code == 2 and "exists already" in r.output
    r = runner.invoke(app, ["staff", "list", "--database-url", sqlite_url])
    assert "alex@shop.example\tagent" in r.output
