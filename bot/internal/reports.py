"""Reports: per update and audience, by goal; pulse results; the support & sales digest.

Slack has no read receipts. What these reports call *engaged* is a person who reacted to an
update or pressed one of its buttons: a lower bound of who read it, never "read".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handoff.models import Handoff
from bot.internal.models import (
    Employee,
    EngagementEvent,
    PulseAnswer,
    PulseSurvey,
    Update,
    UpdateDelivery,
)
from bot.responses import intent_title
from bot.storage.models import Identity, Message, OutboxMessage

if TYPE_CHECKING:
    from bot.runtime import Runtime

READ_PROXY_NOTE = (
    "Slack has no read receipts: 'engaged' counts people who reacted or pressed a button "
    "(a lower bound of readers); 'delivered' means Slack accepted the message."
)
NOT_QUESTIONS = {
    "nlu_fallback",
    "affirm",
    "deny",
    "greet",
    "goodbye",
    "thanks",
    "bot_challenge",
    "opt_out",
    "rephrase",
    "request_human",
    "feedback_helpful",
    "feedback_not_helpful",
}


@dataclass
class UpdateReport:
    key: str
    title: str
    kind: str
    goal: str
    audience: str
    status: str
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    held: int = 0
    bundled: int = 0
    skipped: int = 0
    deferred: int = 0
    reacted: int = 0
    got_it: int = 0
    more: int = 0
    opened_link: int = 0
    ratings: int = 0
    rating_avg: float | None = None
    engaged: int = 0
    by_department: dict[str, dict[str, int]] = field(default_factory=dict)
    skip_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reached(self) -> int:
        """People the update reached (directly, or in a digest)."""
        return self.sent + self.bundled

    @property
    def engagement_rate(self) -> float | None:
        return self.engaged / self.reached if self.reached else None


async def update_report(s: AsyncSession, u: Update) -> UpdateReport:
    r = UpdateReport(u.key, u.title, u.kind, u.goal, u.audience, u.status)
    rows = (
        await s.execute(
            select(UpdateDelivery, Employee.department, OutboxMessage.status)
            .outerjoin(Employee, Employee.id == UpdateDelivery.employee_id)
            .outerjoin(
                OutboxMessage,
                OutboxMessage.id
                == func.coalesce(UpdateDelivery.outbox_id, UpdateDelivery.digest_outbox_id),
            )
            .where(UpdateDelivery.update_id == u.id)
        )
    ).all()
    events = (
        await s.execute(
            select(EngagementEvent.employee_id, EngagementEvent.kind, EngagementEvent.value).where(
                EngagementEvent.update_id == u.id
            )
        )
    ).all()
    engaged_people: set[int] = set()
    reacted: set[int] = set()
    got: set[int] = set()
    more: set[int] = set()
    links: set[int] = set()
    ratings: dict[int, int] = {}
    anonymous_answers = 0
    for emp_id, kind, value in events:
        if emp_id is None:
            anonymous_answers += kind == "pulse_answer"
            continue
        if kind == "reaction":
            reacted.add(emp_id)
        elif kind == "click" and value == "got_it":
            got.add(emp_id)
        elif kind == "click" and value == "more":
            more.add(emp_id)
        elif kind == "click" and (value or "").startswith("link"):
            links.add(emp_id)
        elif kind == "rating" and value and value.isdigit():
            ratings[emp_id] = int(value)  # the latest rating of each person
        if kind != "reaction_removed":
            engaged_people.add(emp_id)
    dept: dict[str, Counter[str]] = defaultdict(Counter)
    for d, department, ob_status in rows:
        r.planned += 1
        name = department or ("(channel)" if d.employee_id is None else "(no department)")
        dept[name]["planned"] += 1
        if d.status == "sent":
            r.sent += 1
            dept[name]["reached"] += 1
        elif d.status == "bundled":
            r.bundled += 1
            dept[name]["reached"] += 1
        elif d.status == "held":
            r.held += 1
        elif d.status == "skipped":
            r.skipped += 1
            key = (d.reason or "skipped").split(" (")[0]
            r.skip_reasons[key] = r.skip_reasons.get(key, 0) + 1
        if d.deferred_count:
            r.deferred += 1
        if ob_status == "sent":
            r.delivered += 1
        elif ob_status == "dead":
            r.failed += 1
        if d.employee_id in engaged_people:
            dept[name]["engaged"] += 1
    r.reacted, r.got_it, r.more = len(reacted), len(got), len(more)
    r.opened_link = len(links)
    r.ratings = len(ratings)
    r.rating_avg = sum(ratings.values()) / len(ratings) if ratings else None
    r.engaged = len(engaged_people) + anonymous_answers
    r.by_department = {k: dict(v) for k, v in sorted(dept.items())}
    return r


async def reports(s: AsyncSession, key: str | None = None) -> list[UpdateReport]:
    q = select(Update).order_by(Update.id)
    if key:
        q = q.where(Update.key == key)
    return [await update_report(s, u) for u in (await s.execute(q)).scalars()]


def by_goal(reps: list[UpdateReport]) -> dict[str, dict[str, Any]]:
    """Totals per goal: updates, reached, engaged, engagement rate, average rating."""
    out: dict[str, dict[str, Any]] = {}
    for r in reps:
        g = out.setdefault(
            r.goal, {"updates": 0, "reached": 0, "engaged": 0, "rating_sum": 0.0, "ratings": 0}
        )
        g["updates"] += 1
        g["reached"] += r.reached
        g["engaged"] += r.engaged
        if r.rating_avg is not None:
            g["rating_sum"] += r.rating_avg * r.ratings
            g["ratings"] += r.ratings
    for g in out.values():
        g["engagement_rate"] = g["engaged"] / g["reached"] if g["reached"] else None
        g["rating_avg"] = g["rating_sum"] / g["ratings"] if g["ratings"] else None
        del g["rating_sum"]
    return dict(sorted(out.items()))


# --- pulse surveys ------------------------------------------------------------------------------


@dataclass
class PulseResults:
    question: str
    options: list[str]
    anonymous: bool
    min_group_size: int
    group_by: str
    responses: int
    overall: dict[str, int] | None  # None: fewer answers than the minimum group size
    groups: dict[str, dict[str, int]]  # only groups large enough to show
    hidden_groups: int  # groups not shown (too small, or would reveal a small one)


def pulse_results(survey: PulseSurvey, answers: list[tuple[str | None, str]]) -> PulseResults:
    """Aggregate ``(group, value)`` answers so that no group under the minimum shows, and no
    small group can be worked out by subtracting the shown groups from the total."""
    k = survey.min_group_size
    total = len(answers)
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for group, value in answers:
        per_group[group or "(none)"][value] += 1
    sizes = {g: sum(c.values()) for g, c in per_group.items()}
    visible = {g for g, n in sizes.items() if n >= k}
    if total >= k:
        # complementary suppression: the answers of hidden groups, taken together, must
        # themselves be at least k (or none at all)
        while visible and 0 < total - sum(sizes[g] for g in visible) < k:
            visible.remove(min(visible, key=lambda g: (sizes[g], g)))
    else:
        visible = set()

    def dist(c: Counter[str]) -> dict[str, int]:
        return {o: c.get(o, 0) for o in survey.options}

    overall = dist(Counter(v for _, v in answers)) if total >= k else None
    return PulseResults(
        question=survey.question,
        options=list(survey.options),
        anonymous=survey.anonymous,
        min_group_size=k,
        group_by=survey.group_by,
        responses=total,
        overall=overall,
        groups={g: dist(per_group[g]) for g in sorted(visible)},
        hidden_groups=len(per_group) - len(visible),
    )


async def pulse_results_for(s: AsyncSession, update_id: int) -> PulseResults | None:
    survey = (
        await s.execute(select(PulseSurvey).where(PulseSurvey.update_id == update_id))
    ).scalar_one_or_none()
    if survey is None:
        return None
    answers = [
        (g, v)
        for g, v in (
            await s.execute(
                select(PulseAnswer.group, PulseAnswer.value).where(
                    PulseAnswer.survey_id == survey.id
                )
            )
        ).all()
    ]
    return pulse_results(survey, answers)


# --- the support & sales digest -----------------------------------------------------------------


async def team_digest_data(
    s: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    runtime: Runtime | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Figures of one week from the assistant's own tables (other features' when present).
    ``channel``: the employees' channel (their messages there are not customers')."""
    parts = [select(Employee.contact_id).where(Employee.contact_id.is_not(None))]
    if channel is not None:
        parts.append(
            select(Identity.contact_id).where(
                Identity.external_id.in_(select(Employee.slack_user_id)),
                Identity.channel == channel,
            )
        )
    staff = union(*parts)
    window = (
        Message.direction == "in",
        Message.created_at >= since,
        Message.created_at < until,
        Message.contact_id.not_in(staff),
    )
    conversations = (
        await s.execute(select(func.count(func.distinct(Message.conversation_id))).where(*window))
    ).scalar_one()
    threshold = runtime.settings.nlu_threshold if runtime is not None else 0.5
    top = (
        await s.execute(
            select(Message.intent, func.count())
            .where(
                *window,
                Message.intent.is_not(None),
                Message.intent.not_in(NOT_QUESTIONS),
                func.coalesce(Message.confidence, 1.0) >= threshold,  # unsure: a gap instead
                ~Message.intent.like("internal%"),
            )
            .group_by(Message.intent)
            .order_by(func.count().desc(), Message.intent)
            .limit(5)
        )
    ).all()
    gap_text = func.lower(func.trim(Message.text))
    gaps = (
        await s.execute(
            select(gap_text, func.count())
            .where(
                *window,
                Message.payload.is_(None),
                (Message.intent == "nlu_fallback") | (Message.confidence < threshold),
            )
            .group_by(gap_text)
            .order_by(func.count().desc(), gap_text)
            .limit(5)
        )
    ).all()
    data: dict[str, Any] = {
        "conversations": int(conversations),
        "top_questions": [
            {"intent": i, "topic": _topic_title(runtime, str(i)), "count": int(n)} for i, n in top
        ],
        "faq_gaps": [{"text": str(t)[:120], "count": int(n)} for t, n in gaps],
    }
    data["handoffs"], data["csat"] = await _handoff_figures(s, since, until)
    return data


def _topic_title(runtime: Runtime | None, intent: str) -> str:
    if runtime is None:
        return intent_title(intent)
    return runtime.responses.topic_title(intent, runtime.settings.default_language)


async def _handoff_figures(
    s: AsyncSession, since: datetime, until: datetime
) -> tuple[int, dict[str, Any]]:
    """Handoffs opened in the range, and the average of their CSAT ratings."""
    count, avg, rated = (
        await s.execute(
            select(func.count(), func.avg(Handoff.csat), func.count(Handoff.csat)).where(
                Handoff.created_at >= since, Handoff.created_at < until
            )
        )
    ).one()
    return int(count), {"score": float(avg) if avg is not None else None, "count": int(rated)}
