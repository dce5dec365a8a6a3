"""Built-in texts follow the shop's register per language (issue 23): the shipped German says
"du" like the demo shop's FAQ and widget; shop.yml can choose "Sie"; a shop's responses.yml
overrides any built-in text in its language."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml

from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Inbound
from tests.conftest import REPO

FORMAL = re.compile(r"\b(Sie|Ihre?[nmrs]?|Ihnen)\b")
BUILTIN_FILES = [
    REPO / "bot" / "builtin_responses.yml",
    REPO / "bot" / "flows" / "builtin_texts.yml",
]


def test_shipped_german_built_in_texts_say_du() -> None:
    for f in BUILTIN_FILES:
        texts = yaml.safe_load(f.read_text(encoding="utf-8"))["responses"]
        formal = {n: t["de"] for n, t in texts.items() if "de" in t and FORMAL.search(t["de"])}
        assert formal == {}, f"{f.name}: German texts in the formal register: {formal}"


async def _runtime(
    tmp_path: Path,
    db_url: str,
    make_settings: Callable[..., Settings],
    model_cache: Path,
    shop: str | None = None,
    de_responses: str | None = None,
) -> Runtime:
    content = tmp_path / "content"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    shutil.copytree(REPO / "flows", content / "flows")
    if shop is not None:
        (content / "shop.yml").write_text(shop, encoding="utf-8")
    if de_responses is not None:
        f = content / "nlu_data" / "de" / "responses.yml"
        f.write_text(f.read_text(encoding="utf-8") + de_responses, encoding="utf-8")
    # the same training data as the demo: its trained model serves
    r = Runtime(
        make_settings(db_url, content_dir=content, model_dir=model_cache / "demo"),
        start_worker=False,
    )
    await r.start(migrate=False)
    return r


@pytest.fixture
async def runtimes() -> AsyncIterator[list[Runtime]]:
    made: list[Runtime] = []
    yield made
    for r in made:
        await r.stop()


def stop(who: str) -> Inbound:
    return Inbound(channel="rest", external_id=who, text="stopp", language="de")


async def test_german_stop_and_handback_say_du_by_default(
    tmp_path: Path,
    db_url: str,
    make_settings: Callable[..., Settings],
    model_cache: Path,
    runtimes: list[Runtime],
) -> None:
    rt = await _runtime(tmp_path, db_url, make_settings, model_cache)
    runtimes.append(rt)
    res = await rt.engine.handle(stop("a"))
    assert res.replies[0].text.startswith("Erledigt: Du bekommst keine Werbenachrichten")
    assert rt.responses.text("utter_handoff_back", "de").startswith("Du schreibst wieder")
    assert rt.responses.text("utter_flow_nothing_open", "de").endswith("Frag mich einfach!")


async def test_a_formal_shop_says_sie_and_its_own_text_wins(
    tmp_path: Path,
    db_url: str,
    make_settings: Callable[..., Settings],
    model_cache: Path,
    runtimes: list[Runtime],
) -> None:
    rt = await _runtime(
        tmp_path,
        db_url,
        make_settings,
        model_cache,
        shop="languages:\n  de: {register: formal}\n",
        de_responses=(
            "  utter_handoff_back:\n  - text: Sie sind wieder beim Assistenten der Rösterei.\n"
        ),
    )
    runtimes.append(rt)
    res = await rt.engine.handle(stop("b"))
    assert res.replies[0].text.startswith("Erledigt: Sie erhalten keine Werbenachrichten")
    assert rt.responses.text("utter_handoff_back", "de") == (
        "Sie sind wieder beim Assistenten der Rösterei."
    )
    assert rt.responses.text("utter_opted_out", "en").startswith("Done:")  # other languages
    # the flow runner's own texts too
    assert rt.responses.text("utter_flow_nothing_open", "de").endswith("Fragen Sie mich einfach!")
