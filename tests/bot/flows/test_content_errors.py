"""Broken flow and lifecycle files: every problem names the file and the line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bot.flows.content import ContentProblems, load_content

RESPONSES = {
    "en": {"utter_hi": "Hi", "utter_bye": "Bye", "utter_q": "Sure?", "utter_yes": "Yes"},
    "de": {"utter_hi": "Hallo", "utter_bye": "Tschüss", "utter_q": "Sicher?"},
}


def content(tmp_path: Path, flows: dict[str, str], lifecycle: str | None = None) -> Path:
    for lang, texts in RESPONSES.items():
        d = tmp_path / "nlu_data" / lang
        d.mkdir(parents=True, exist_ok=True)
        data = {"version": "3.1", "responses": {k: [{"text": v}] for k, v in texts.items()}}
        (d / "responses.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    fd = tmp_path / "flows"
    fd.mkdir(exist_ok=True)
    for name, text in flows.items():
        (fd / name).write_text(textwrap.dedent(text), encoding="utf-8")
    if lifecycle is not None:
        (fd / "lifecycle.yml").write_text(textwrap.dedent(lifecycle), encoding="utf-8")
    return tmp_path


def problems(tmp_path: Path, flows: dict[str, str], lifecycle: str | None = None) -> list[str]:
    folder = content(tmp_path, flows, lifecycle)
    result = load_content(folder, languages=["en", "de"])
    return [str(p).replace(str(folder) + "/", "") for p in result.problems]


GOOD = """\
flows:
  hello:
    trigger: {intent: greet}
    steps:
      - say: utter_hi
      - say: utter_bye
"""


def test_a_good_file_has_no_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, {"hello.yml": GOOD}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "flows:\n  hello:\n    steps: [\n      - say: utter_hi\n",
            "flows/x.yml:4: error: YAML syntax:",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_hi\n      - jump: far\n",
            "flows/x.yml:6: error: a step has exactly one of say, ask, collect, wait, branch, call, handoff, set, record, end (found none)",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_hi\n        next: nowhere\n",
            "flows/x.yml:5: error: step 'step_1' goes to 'nowhere', which is not a step of 'hello'",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_hi\n        next: end\n      - id: lost\n        say: utter_bye\n",
            "flows/x.yml:7: error: step 'lost' of 'hello' is unreachable",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_nobody_wrote_this\n",
            "flows/x.yml:5: error: unknown response 'utter_nobody_wrote_this' (in no language)",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - ask: utter_q\n        buttons:\n          - {title: utter_yes, next: end}\n",
            "flows/x.yml:7: error: response 'utter_yes' is missing in de",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - call: ghost\n",
            "flows/x.yml:5: error: step 'step_1' calls unknown flow 'ghost'",
        ),
        (
            "flows:\n  hello:\n    trigger: {stage: sleeping}\n    steps:\n      - say: utter_hi\n",
            "flows/x.yml:3: error: unknown stage 'sleeping' (stages: awareness",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - wait: tomorrow\n",
            "flows/x.yml:5: error: not a duration: 'tomorrow' (use e.g. 3d, 12h, 30m, 2w)",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - branch:\n          - if:\n              shoe_size: {gt: 40}\n            then: end\n      - say: utter_hi\n",
            "flows/x.yml:7: error: unknown field 'shoe_size'",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet, when: {segment: vips}}\n    steps:\n      - say: utter_hi\n",
            "flows/x.yml:3: error: unknown segment 'vips' (segments: customer,",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - id: a\n        say: utter_hi\n      - id: a\n        say: utter_bye\n",
            "flows/x.yml:7: error: step id 'a' is used twice in the flow",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - collect: email\n        validate: emial\n        ask: utter_q\n",
            "flows/x.yml:6: error: validate: one of text, email, number",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_hi\n      - call: hello\n",
            "flows/x.yml:2: error: flow 'hello' calls itself (through 'hello')",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    colour: blue\n    steps:\n      - say: utter_hi\n",
            "flows/x.yml:4: error: flows.hello.colour: unknown key 'colour'",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - ask: utter_q\n        progress: maybe\n",
            "flows/x.yml:6: error: flows.hello.steps.0.progress: Input should be a valid boolean",
        ),
        (
            "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_hi\n        slot: x\n",
            "flows/x.yml:6: error: flows.hello.steps.0.slot: unknown key 'slot'",
        ),
        (
            "steps:\n  - say: utter_hi\n",
            "flows/x.yml:1: error: a flow file is a mapping with 'flows:'",
        ),
    ],
    ids=[
        "yaml",
        "step kind",
        "next",
        "unreachable",
        "unknown response",
        "missing language",
        "unknown call",
        "unknown stage",
        "duration",
        "condition field",
        "segment",
        "duplicate id",
        "validator",
        "calls itself",
        "flow key",
        "step type",
        "step key",
        "no flows key",
    ],
)
def test_broken_flow_files(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, {"x.yml": text})
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stages: [a, b]\ntransitions:\n  - {on: paid, from: [a], to: c}\n",
            "flows/lifecycle.yml:3: error: unknown stage 'c' (stages: a, b)",
        ),
        (
            "stages: [a, b]\ntransitions:\n  - {from: [a], to: b}\n",
            "flows/lifecycle.yml:3: error: 'on' is missing",
        ),
        (
            "stages: [a, b]\ninactivity:\n  - from: [a]\n    after: soon\n    to: b\n",
            "flows/lifecycle.yml:4: error: not a duration: 'soon'",
        ),
        (
            "stages: [a, b]\nsegments:\n  x: {segment: y}\n  y: {segment: x}\n",
            "flows/lifecycle.yml:3: error: segments refer to each other: x -> y -> x",
        ),
        (
            "stages: [a, b]\nsegments:\n  big: {purchase_count: {gte: lots}}\n",
            "flows/lifecycle.yml:3: error: purchase_count: gte needs a number, not 'lots'",
        ),
        (
            "stages: [a, b]\nfollowups:\n  greet:\n    - {when: {stage: a}, response: utter_missing}\n",
            "flows/lifecycle.yml:4: error: unknown response 'utter_missing' (in no language)",
        ),
        ("stages: [a, b]\nrules: []\n", "flows/lifecycle.yml:2: error: rules: unknown key 'rules'"),
    ],
    ids=["stage", "on", "after", "segment cycle", "number", "follow-up response", "top key"],
)
def test_broken_lifecycle_files(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, {"hello.yml": GOOD}, lifecycle=text)
    assert any(p.startswith(expected) for p in found), found


def test_the_runtime_refuses_to_start_with_broken_flows(tmp_path: Path) -> None:
    folder = content(tmp_path, {"x.yml": "flows:\n  hello:\n    steps:\n      - say: utter_nope\n"})
    with pytest.raises(ContentProblems) as e:
        load_content(folder, strict=True, languages=["en", "de"])
    assert str(e.value).startswith(f"{folder}/flows/x.yml:4: error: unknown response 'utter_nope'")
    # a text missing in one language only is a warning at start: the default language stands in
    ok = content(
        tmp_path,
        {
            "x.yml": "flows:\n  hello:\n    trigger: {intent: greet}\n    steps:\n      - say: utter_yes\n"
        },
    )
    result = load_content(ok, strict=True, languages=["en", "de"])
    assert [p.severity for p in result.problems] == ["warning"]
