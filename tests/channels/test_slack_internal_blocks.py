"""Block Kit for internal updates: what employees see in Slack, within Slack's limits."""

from __future__ import annotations

from bot.engine import parse_payload
from bot.internal.render import Item, Texts
from channels.slack_internal import SlackRenderer, to_mrkdwn


def item(**kw: object) -> Item:
    base: dict[str, object] = {
        "update_id": 7,
        "key": "spring",
        "kind": "update",
        "title": "Spring collection is live " * 10,
        "body": "# Big news\n**Twelve** new blends, see [the shop](https://example.com/s).\n- one\n- two",
        "language": "de",
        "links": [{"title": "Katalog", "url": "https://example.com/k"}],
        "has_more": True,
    }
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


def test_markdown_becomes_mrkdwn() -> None:
    assert to_mrkdwn("# Title\n**bold** and [x](https://e.com) <b>\n- a") == (
        "*Title*\n*bold* and <https://e.com|x> &lt;b&gt;\n• a"
    )


def test_update_blocks_carry_buttons_whose_values_are_payloads() -> None:
    out = SlackRenderer(Texts()).update(item())
    blocks = out.metadata["blocks"]
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    assert "*Twelve*" in blocks[1]["text"]["text"]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    ids = [b["action_id"] for b in buttons]
    assert len(ids) == len(set(ids))  # unique within the message, as Slack requires
    titles = [b["text"]["text"] for b in buttons]
    assert titles == ["Katalog", "Verstanden", "Mehr dazu", "1", "2", "3", "4", "5"]
    values = [parse_payload(b["value"]) for b in buttons]
    assert all(v is not None and v["intent"]["name"] == "internal_feedback" for v in values)
    assert buttons[0]["url"] == "https://example.com/k"
    # the plain text stays for notifications and for channels without blocks
    assert out.text.startswith("*Spring collection") and len(out.buttons) == 7


def test_pulse_and_digest_blocks() -> None:
    r = SlackRenderer(Texts())
    pulse = item(
        kind="pulse",
        language="en",
        pulse={
            "survey_id": 3,
            "question": "How clear?",
            "options": list("123456"),
            "anonymous": True,
            "min": 5,
        },
    )
    blocks = r.update(pulse).metadata["blocks"]
    rows = [
        b["elements"]
        for b in blocks
        if b["type"] == "actions" and b["elements"][0]["action_id"].startswith("internal_pulse")
    ]
    assert [len(row) for row in rows] == [5, 1]
    assert "at least 5 people" in blocks[-1]["elements"][0]["text"]
    digest = r.digest([item(language="en"), pulse], "en")
    text = [b["text"]["text"] for b in digest.metadata["blocks"] if b["type"] == "section"]
    assert text[0] == "Your weekly digest: 2 update(s) you have not seen yet."
    assert "<https://example.com/k|Katalog>" in text[1]
