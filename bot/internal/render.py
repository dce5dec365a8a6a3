"""Updates as channel-neutral messages. Channels add their own formatting on top
(``channels.slack_internal.SlackRenderer`` puts Block Kit in ``metadata["blocks"]``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from bot.content.fill import fill
from bot.i18n import day
from bot.responses import Responses
from bot.types import Button, Outbound, Purpose

TEXTS_FILE = Path(__file__).with_name("texts.yml")
FEEDBACK_INTENT = "internal_feedback"
PULSE_INTENT = "internal_pulse"


class Texts:
    """The feature's texts by language; a shop's ``utter_internal_<name>`` wins."""

    def __init__(self, responses: Responses | None = None, default_language: str = "en") -> None:
        self.responses = responses
        self.default_language = default_language
        self._texts: dict[str, dict[str, str]] = yaml.safe_load(
            TEXTS_FILE.read_text(encoding="utf-8")
        )

    def __call__(self, name: str, language: str | None, **values: Any) -> str:
        lang = language or self.default_language
        shop = f"utter_internal_{name}"
        if self.responses is not None and self.responses.has(shop, lang):
            return self.responses.text(shop, lang, **values)
        by_lang = self._texts.get(name, {})
        text = by_lang.get(lang) or by_lang.get(self.default_language) or by_lang.get("en") or name
        return fill(text, values)


@dataclass
class Item:
    """One update, ready to render in one language."""

    update_id: int
    key: str
    kind: str
    title: str
    body: str
    language: str
    links: list[dict[str, str]] = field(default_factory=list)
    has_more: bool = False
    buttons: bool = True
    pulse: dict[str, Any] | None = None  # survey_id, question, options, anonymous, min
    team: dict[str, Any] | None = None  # the team digest's figures

    @classmethod
    def of(
        cls, update_id: int, key: str, kind: str, content: dict[str, Any], language: str
    ) -> Item:
        titles = content.get("titles") or {}
        bodies = content.get("bodies") or {}
        base = str(content.get("language") or "en")
        lang = (
            language if language in bodies else base if base in bodies else next(iter(bodies), base)
        )
        return cls(
            update_id=update_id,
            key=key,
            kind=kind,
            title=str(titles.get(lang) or titles.get(base) or key),
            body=str(bodies.get(lang, "")),
            language=lang if bodies else language,
            links=list(content.get("links") or []),
            has_more=bool(content.get("more")),
            buttons=bool(content.get("buttons", True)),
            team=content.get("team"),
        )

    def summary(self, limit: int = 160) -> str:
        first = next((ln.strip() for ln in self.body.splitlines() if ln.strip()), "")
        first = first.lstrip("#").strip()
        return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def feedback_payload(update_id: int, value: str) -> str:
    return f"/{FEEDBACK_INTENT}" + json.dumps({"update": update_id, "value": value})


def pulse_payload(survey_id: int, value: str) -> str:
    return f"/{PULSE_INTENT}" + json.dumps({"survey": survey_id, "value": value})


class Renderer(Protocol):
    def update(self, item: Item) -> Outbound: ...

    def digest(self, items: list[Item], language: str) -> Outbound: ...

    def text(self, text: str, *, thread_id: str | None = None) -> Outbound: ...


class PlainRenderer:
    """Text and buttons, understood by every channel (buttons come back as payloads)."""

    def __init__(self, texts: Texts) -> None:
        self.t = texts

    def buttons(self, item: Item) -> list[Button]:
        if item.pulse:
            sid = int(item.pulse["survey_id"])
            return [Button(o, pulse_payload(sid, o)) for o in item.pulse["options"]]
        if not item.buttons or item.kind == "team_digest":
            return []
        out = [
            Button(
                self.t("button_got_it", item.language), feedback_payload(item.update_id, "got_it")
            )
        ]
        if item.has_more:
            out.append(
                Button(
                    self.t("button_more", item.language), feedback_payload(item.update_id, "more")
                )
            )
        out += [
            Button(str(n), feedback_payload(item.update_id, f"rating:{n}")) for n in range(1, 6)
        ]
        return out

    def body_text(self, item: Item) -> str:
        if item.team is not None:
            return team_digest_text(item.team, self.t, item.language)
        parts = [f"*{item.title}*", item.body]
        if item.pulse:
            parts.append(str(item.pulse["question"]))
            if item.pulse.get("anonymous"):
                parts.append(self.t("pulse_anonymous_note", item.language, min=item.pulse["min"]))
        parts += [f"{link['title']}: {link['url']}" for link in item.links]
        if self.buttons(item) and not item.pulse:
            parts.append(self.t("rate_prompt", item.language))
        return "\n\n".join(p for p in parts if p)

    def update(self, item: Item) -> Outbound:
        return Outbound(
            text=self.body_text(item),
            buttons=tuple(self.buttons(item)),
            purpose=Purpose.SERVICE,
            metadata={"internal_update": item.update_id, "intent": f"internal/{item.kind}"},
        )

    def digest(self, items: list[Item], language: str) -> Outbound:
        lines = [self.t("digest_intro", language, count=len(items))]
        buttons: list[Button] = []
        for it in items:
            line = f"• *{it.title}*: {it.summary()}"
            if it.links:
                line += f" ({it.links[0]['url']})"
            lines.append(line)
            if it.pulse:
                lines.append(f"  {it.pulse['question']}")
                buttons += self.buttons(it)
        return Outbound(
            text="\n".join(lines),
            buttons=tuple(buttons),
            purpose=Purpose.SERVICE,
            metadata={
                "internal_digest": [it.update_id for it in items],
                "intent": "internal/digest",
            },
        )

    def text(self, text: str, *, thread_id: str | None = None) -> Outbound:
        return Outbound(text=text, thread_id=thread_id, metadata={"intent": "internal/reply"})


def team_digest_text(data: dict[str, Any], t: Texts, lang: str) -> str:
    """The support & sales digest as plain text (Slack renders it with mrkdwn)."""
    lines = [
        f"*{t('team_title', lang, start=day(data['start'], lang), end=day(data['end'], lang))}*",
        t("team_conversations", lang, count=data.get("conversations", 0)),
        "",
        f"*{t('team_top_questions', lang)}*",
    ]
    top = data.get("top_questions") or []
    lines += [f"{i}. {q['topic']} ({q['count']})" for i, q in enumerate(top, 1)] or [
        t("team_none", lang)
    ]
    lines += ["", f"*{t('team_faq_gaps', lang)}*"]
    gaps = data.get("faq_gaps") or []
    lines += [f"{i}. \u201c{g['text']}\u201d ({g['count']})" for i, g in enumerate(gaps, 1)] or [
        t("team_none", lang)
    ]
    lines.append("")
    if data.get("handoffs") is None:
        lines.append(t("team_unavailable", lang, what="Handoffs"))
    else:
        lines.append(t("team_handoffs", lang, count=data["handoffs"]))
    csat = data.get("csat")
    if csat is None:
        lines.append(t("team_unavailable", lang, what="CSAT"))
    else:
        score = "–" if csat["count"] == 0 else f"{csat['score']:.2f}"
        lines.append(t("team_csat", lang, score=score, count=csat["count"]))
    return "\n".join(lines)
