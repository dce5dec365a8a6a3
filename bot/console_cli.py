"""``concierge staff add|list`` and ``concierge contacts export|erase``."""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from bot.cli_common import DbOpt, fail, migrated, run_async, settings_from

staff_app = typer.Typer(help="Staff accounts of the admin console.", no_args_is_help=True)
contacts_app = typer.Typer(
    help="A person's data: export it, erase it (data protection).", no_args_is_help=True
)

RefArg = Annotated[
    str,
    typer.Argument(
        help="contact id, telegram:<chat id>, slack:<user id>, web:<visitor id>, "
        "user:<shop user id> or email:<address>"
    ),
]
T = TypeVar("T")


def _with_db(database_url: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(db)`` on a migrated database; database errors are one line, exit 2."""
    from bot.storage.db import Database

    settings = settings_from(None, database_url)

    async def go() -> T:
        db = Database(settings.database_url)
        async with migrated(db):
            return await work(db)

    return run_async(go())


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Option(help="The name shown on replies and actions")],
    email: Annotated[str, typer.Option(help="E-mail address (also a login name)")],
    role: Annotated[str, typer.Option(help="owner (everything) or agent (no export/erase)")] = (
        "agent"
    ),
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 10 characters (asked for when not given)",
        ),
    ] = "",
    database_url: DbOpt = None,
) -> None:
    """Create a staff account (the password is stored as an argon2id hash)."""
    from bot.clock import utcnow
    from bot.staff import StaffError, create_account, log_action

    async def work(db: Any) -> int:
        async with db.session() as s:
            acc = await create_account(
                s, name=name, email=email, password=password, role=role, now=utcnow()
            )
            await log_action(
                s,
                staff_id=None,
                staff_name=f"cli:{getpass.getuser()}"[:64],
                action="staff_add",
                now=utcnow(),
                detail={"account": acc.id, "role": role},
            )
            return acc.id

    try:
        acc_id = _with_db(database_url, work)
    except StaffError as e:
        raise fail(f"cannot create the account: {e}") from None
    typer.echo(f"staff account {acc_id} ({name}, {role}) created")


@staff_app.command("list")
def staff_list(database_url: DbOpt = None) -> None:
    """The staff accounts: id, name, e-mail, role, created, disabled."""
    from bot.staff import list_accounts

    async def work(db: Any) -> list[Any]:
        async with db.session() as s:
            return await list_accounts(s)

    for a in _with_db(database_url, work):
        state = "disabled" if a.disabled else "active"
        typer.echo(
            f"{a.id}\t{a.name}\t{a.email}\t{a.role}\t{a.created_at:%Y-%m-%d %H:%M}Z\t{state}"
        )


def _ref_kind(ref: str) -> str:
    """What ``ref`` names (``id``, ``telegram``, ``email``...), or exit 2 with why it is not a
    reference."""
    from bot.privacy import RefError, parse_ref

    try:
        return parse_ref(ref)[0]
    except RefError as e:
        raise fail(str(e)) from None


@contacts_app.command("export")
def contacts_export(
    ref: RefArg,
    database_url: DbOpt = None,
) -> None:
    """Print one JSON document with everything stored about a person."""
    from bot.privacy import export_contact, find_contact

    _ref_kind(ref)

    async def work(db: Any) -> dict[str, Any] | None:
        async with db.session() as s:
            contact = await find_contact(s, ref)
            return None if contact is None else await export_contact(s, contact)

    doc = _with_db(database_url, work)
    if doc is None:
        raise fail(f"nobody is stored under {ref}", 1)
    typer.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


@contacts_app.command("erase")
def contacts_erase(
    ref: RefArg,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really erase (without it: nothing changes)")
    ] = (False),
    database_url: DbOpt = None,
) -> None:
    """Delete everything stored about a person; records who erased whom and when."""
    from bot.clock import utcnow
    from bot.privacy import erase_contact, export_contact, find_contact

    kind = _ref_kind(ref)

    async def work(db: Any) -> tuple[int, dict[str, int]] | None:
        async with db.session() as s:
            contact = await find_contact(s, ref)
            if contact is None:
                return None
            cid = contact.id
            if not yes:
                doc = await export_contact(s, contact)
                return cid, {k: len(v) if isinstance(v, list) else 1 for k, v in doc.items() if v}
            counts = await erase_contact(
                s, contact, by=f"cli:{getpass.getuser()}", by_id=None, now=utcnow(), kind=kind
            )
            return cid, counts

    found = _with_db(database_url, work)
    if found is None:
        raise fail(f"nobody is stored under {ref}", 1)
    cid, counts = found
    rows = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    if not yes:
        typer.echo(f"contact {cid} has: {rows}. Nothing changed: add --yes to erase it.")
        raise typer.Exit(1)
    typer.echo(f"contact {cid} erased ({rows})")
