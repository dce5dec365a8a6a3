"""Staff accounts of the console (owner / agent) and the record of what each of them did.

Passwords are hashed with argon2id (argon2-cffi's defaults, rehashed on login when those
change). The first account is the owner, created from the one-time setup link that
``concierge run`` prints while there is none (or ``concierge staff add``); the owner invites
the others. Every staff reply and action (reply, note, take, assign, resolve, hand back,
export, erase, invite) is written to ``staff_actions`` with the account that did it.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Boolean, ForeignKey, Index, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base, BigId

if TYPE_CHECKING:
    from bot.runtime import Runtime
from bot.storage.types import JSONType

log = logging.getLogger(__name__)

OWNER, AGENT = "owner", "agent"
ROLES = (OWNER, AGENT)
MIN_PASSWORD = 10
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

SETUP_SECONDS = 3600  # the first-start setup link works this long
_SETUP_SALT = "concierge.staff-setup"

_hasher = PasswordHasher()
# verified against when the account does not exist, so both answers take as long
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=AGENT)
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class StaffAction(Base):
    """Who did what, when: ``action`` on a handoff and/or a contact (ids only, no content)."""

    __tablename__ = "staff_actions"
    __table_args__ = (
        Index("ix_staff_actions_staff", "staff_id", "at"),
        Index("ix_staff_actions_handoff", "handoff_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="SET NULL")
    )
    staff_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    handoff_id: Mapped[int | None] = mapped_column(BigId)  # not a foreign key: outlives erase
    contact_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # counts, roles
    at: Mapped[datetime]


class StaffError(ValueError):
    """A staff account cannot be created as asked: the message says why, for a person."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_new_account(name: str, email: str, password: str, role: str) -> None:
    problems = []
    if not name.strip() or len(name) > 64:
        problems.append("a name of 1-64 characters")
    if not EMAIL_RE.match(email) or len(email) > 320:
        problems.append("a valid e-mail address")
    if len(password) < MIN_PASSWORD:
        problems.append(f"a password of at least {MIN_PASSWORD} characters")
    if role not in ROLES:
        problems.append("role owner or agent")
    if problems:
        raise StaffError("needs " + ", ".join(problems))


async def count_staff(s: AsyncSession) -> int:
    return int((await s.execute(select(func.count()).select_from(StaffAccount))).scalar_one())


async def create_account(
    s: AsyncSession, *, name: str, email: str, password: str, role: str, now: datetime
) -> StaffAccount:
    """A new account (checked: name, e-mail, password length, role; name and e-mail unique)."""
    name, email = name.strip(), email.strip().lower()
    check_new_account(name, email, password, role)
    taken = (
        await s.execute(
            select(StaffAccount.id).where(
                (func.lower(StaffAccount.name) == name.lower()) | (StaffAccount.email == email)
            )
        )
    ).first()
    if taken is not None:
        raise StaffError("an account with this name or e-mail address exists already")
    acc = StaffAccount(
        name=name,
        email=email,
        password_hash=hash_password(password),
        role=role,
        created_at=now,
        disabled=False,
    )
    s.add(acc)
    await s.flush()
    return acc


async def authenticate(s: AsyncSession, login: str, password: str) -> StaffAccount | None:
    """The enabled account whose name or e-mail is ``login`` and whose password this is."""
    key = login.strip().lower()
    acc = (
        await s.execute(
            select(StaffAccount).where(
                (func.lower(StaffAccount.name) == key) | (StaffAccount.email == key)
            )
        )
    ).scalar_one_or_none()
    try:
        _hasher.verify(acc.password_hash if acc else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if acc is None or acc.disabled:
        return None
    if _hasher.check_needs_rehash(acc.password_hash):
        acc.password_hash = hash_password(password)
    return acc


async def log_action(
    s: AsyncSession,
    *,
    staff_id: int | None,
    staff_name: str,
    action: str,
    now: datetime,
    handoff_id: int | None = None,
    contact_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    s.add(
        StaffAction(
            staff_id=staff_id,
            staff_name=staff_name[:64],
            action=action,
            handoff_id=handoff_id,
            contact_id=contact_id,
            detail=detail or {},
            at=now,
        )
    )


def setup_token(secret_key: str) -> str:
    """A one-time token for the first owner's setup link (signed, expires after an hour;
    used once: the console records its nonce and refuses once an account exists)."""
    return URLSafeTimedSerializer(secret_key, salt=_SETUP_SALT).dumps(secrets.token_urlsafe(16))


def check_setup_token(secret_key: str, token: str) -> str | None:
    """The token's nonce when it is genuine and not expired, else ``None``."""
    try:
        nonce = URLSafeTimedSerializer(secret_key, salt=_SETUP_SALT).loads(
            token, max_age=SETUP_SECONDS
        )
    except (BadSignature, SignatureExpired):
        return None
    return nonce if isinstance(nonce, str) else None


def setup_link(secret_key: str, port: int) -> str:
    return f"http://localhost:{port}/admin/setup?token={setup_token(secret_key)}"


async def list_accounts(s: AsyncSession) -> list[StaffAccount]:
    return list(await s.scalars(select(StaffAccount).order_by(StaffAccount.id)))


STAFF_CHECK_SECONDS = 60.0


class StaffDirectory:
    """What the other features know of the staff accounts (``runtime.service(StaffDirectory)``):
    how many enabled ones there are, counted at start and every minute."""

    def __init__(self) -> None:
        self.accounts = 0


async def refresh_staff_count(runtime: Runtime) -> int:
    """How many enabled staff accounts there are, kept in :class:`StaffDirectory` for the
    handoff (a person can answer in the web inbox once somebody has an account)."""
    async with runtime.db.session() as s:
        n = int(
            (
                await s.execute(
                    select(func.count())
                    .select_from(StaffAccount)
                    .where(StaffAccount.disabled.is_(False))
                )
            ).scalar_one()
        )
    directory = runtime.maybe_service(StaffDirectory)
    if directory is not None:
        directory.accounts = n
    return n


def setup(runtime: Runtime) -> None:
    """Count the staff accounts at start and every minute (``concierge staff add`` runs in
    another process)."""
    runtime.register(StaffDirectory())

    async def start() -> None:
        await refresh_staff_count(runtime)

    async def round(_now: datetime) -> int:
        return await refresh_staff_count(runtime)

    runtime.on_start(start)
    runtime.jobs.add("staff accounts", round, every=STAFF_CHECK_SECONDS)


__all__ = [
    "AGENT",
    "OWNER",
    "ROLES",
    "StaffAccount",
    "StaffAction",
    "StaffDirectory",
    "StaffError",
    "authenticate",
    "check_setup_token",
    "count_staff",
    "create_account",
    "hash_password",
    "list_accounts",
    "log_action",
    "refresh_staff_count",
    "setup",
    "setup_link",
    "setup_token",
]
