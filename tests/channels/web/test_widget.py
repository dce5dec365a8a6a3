"""The widget's labels come from the shop's responses (``utter_widget_*``): every served
language's, in the shop's register, with the shop's own wording where it has one."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bot.settings import Settings
from tests.conftest import REPO, LiveServer


def served_texts(server: LiveServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/widget.js", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/javascript; charset=utf-8"
    m = re.search(r"var TEXTS = (\{.*?\});\n", r.text, re.S)
    assert m, r.text[:300]
    assert "/*TEXTS*/" not in r.text
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_every_served_language_has_its_labels(
    sqlite_url: str, make_settings: Callable[..., Settings], start_server: Callable[..., LiveServer]
) -> None:
    data = served_texts(start_server(make_settings(sqlite_url)))
    assert data["default"] == "en"
    assert sorted(data["texts"]) == ["de", "en", "hu", "pl", "sv"]
    assert data["texts"]["de"]["open"] == "Chat öffnen"
    assert data["texts"]["de"]["you"] == "Du"  # the demo shop says "du"
    assert data["texts"]["sv"]["unread"] == "Olästa: {n}"  # the widget fills in the number
    assert all(len(t) == 14 and all(t.values()) for t in data["texts"].values())


def test_a_formal_shop_and_its_own_wording(
    tmp_path: Path,
    sqlite_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
    model_cache: Path,
) -> None:
    content = tmp_path / "content"
    shutil.copytree(REPO / "nlu_data", content / "nlu_data")
    shutil.copytree(REPO / "flows", content / "flows")
    (content / "shop.yml").write_text("languages:\n  de: {register: formal}\n", "utf-8")
    en = content / "nlu_data" / "en" / "responses.yml"
    en.write_text(
        en.read_text("utf-8") + "  utter_widget_title:\n  - text: Ask the roastery\n", "utf-8"
    )
    settings = make_settings(sqlite_url, content_dir=content, model_dir=model_cache / "demo")
    texts = served_texts(start_server(settings))["texts"]
    assert texts["de"]["title"] == "Chatten Sie mit uns"
    assert texts["de"]["placeholder"] == "Ihre Frage…"
    assert texts["de"]["open"] == "Chat öffnen"  # the same in both registers
    assert texts["en"]["title"] == "Ask the roastery"
    assert texts["hu"]["title"] == "Írj nekünk"
