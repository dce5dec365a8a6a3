"""The embedded model on the demo shop's content (nlu_data/) and the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.nlu.answers import answer_parts, find_responses, load_responses
from bot.nlu.data import load_content
from bot.nlu.model import FALLBACK, EmbeddedNLU
from bot.nlu.service import EmbeddedBackend, RasaBackend, load_or_train
from bot.nlu.text import surface
from channels.cli import app
from tests.conftest import REPO

DATA = REPO / "nlu_data"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedNLU:
    return load_or_train(DATA, tmp_path_factory.mktemp("m"))


def test_language_identification_on_the_demo_shop(model: EmbeddedNLU) -> None:
    data = load_content(DATA)
    right = total = 0
    for lang, d in data.items():
        for ex in d.examples:
            if len(ex.text.split()) < 2:  # "hi", "ja", "hej", "stop" are words of several languages
                continue
            total += 1
            right += model.detect_language(ex.text) == lang
    assert total > 400 and right / total >= 0.99


@pytest.mark.parametrize(
    ("text", "lang", "intent"),
    [
        ("what does shiping cost to austria", "en", "faq/shipping"),  # typo
        ("Wie lange dauert die Lieferung in die Schweiz?", "de", "faq/delivery_time"),
        ("mennyi a garancia a kavegepre", "hu", "faq/warranty"),  # no accents
        ("Vilka betalningssätt tar ni emot?", "sv", "faq/payment"),
        ("Czy mogę zwrócić ekspres?", "pl", "faq/returns"),
    ],
)
def test_paraphrases_typos_and_missing_accents(
    model: EmbeddedNLU, text: str, lang: str, intent: str
) -> None:
    r = model.parse(text)
    assert (r.language, r.intent) == (lang, intent)


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather in Paris tomorrow?",
        "Wer hat gestern das Fußballspiel gewonnen?",
        "Opowiedz dowcip",
    ],
)
def test_out_of_scope_is_nlu_fallback(model: EmbeddedNLU, text: str) -> None:
    r = model.parse(text, threshold=0.25)
    assert r.intent == FALLBACK
    assert r.ranking[0][0] != FALLBACK  # the real candidates are still ranked


def test_rasa_shape(model: EmbeddedNLU) -> None:
    out = model.parse("hello").to_rasa()
    assert set(out) == {"text", "intent", "entities", "intent_ranking", "language"}
    assert set(out["intent"]) == {"name", "confidence"}
    assert len(out["intent_ranking"]) == 10
    assert all(set(r) == {"name", "confidence"} for r in out["intent_ranking"])


def test_stale_model_is_retrained(tmp_path: Path) -> None:
    content = tmp_path / "c"
    (content / "en").mkdir(parents=True)
    nlu = content / "en" / "nlu.yml"
    nlu.write_text(
        'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - apples\n- intent: b\n  examples: |\n    - bananas\n'
    )
    m1 = load_or_train(content, tmp_path / "m")
    assert load_or_train(content, tmp_path / "m").trained_at == m1.trained_at  # cached
    nlu.write_text(nlu.read_text() + "- intent: c\n  examples: |\n    - cherries\n")
    m2 = load_or_train(content, tmp_path / "m")
    assert "c" in m2.intents["en"].classes


def test_a_model_file_of_an_older_format_is_refused_with_retrain(tmp_path: Path) -> None:
    """``concierge nlu test`` on a model folder written before the calibrator's features
    changed: one line saying to retrain, not a shape error in the middle of a parse."""
    import pickle

    from bot.nlu.model import FORMAT, MODEL_FILE, ModelMismatchError

    path = EmbeddedNLU.train(load_content(DATA), languages=["en"]).save(tmp_path / "m")
    blob = pickle.loads(path.read_bytes())  # written just above
    blob["format"] = FORMAT - 1
    path.write_bytes(pickle.dumps(blob))
    with pytest.raises(ModelMismatchError, match=r"retrain$") as e:
        EmbeddedNLU.load(tmp_path / "m")
    assert "\n" not in str(e.value) and MODEL_FILE in str(e.value)
    args = ["--model", str(tmp_path / "m"), "--data", str(DATA), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, ["nlu", "test", *args])
    assert result.exit_code != 0 and "retrain" in result.output


def test_cli_train_and_test_write_rasa_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app, ["nlu", "train", "--data", str(DATA / "de" / "nlu.yml"), "--out", str(tmp_path / "m")]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "nlu",
            "test",
            "--model",
            str(tmp_path / "m"),
            "--data",
            str(DATA / "de" / "nlu.yml"),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r" / "intent_report.json").read_text())
    assert report["accuracy"] > 0.9  # training data
    assert {"precision", "recall", "f1-score", "support", "confused_with"} <= set(
        report["faq/returns"]
    )
    assert {"macro avg", "weighted avg"} <= set(report)
    errors = json.loads((tmp_path / "r" / "intent_errors.json").read_text())
    assert all(set(e) == {"text", "intent", "intent_prediction"} for e in errors)
    bad = runner.invoke(
        app, ["nlu", "train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "no <lang>/nlu.yml found" in bad.output


class _FakeRasa(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, body))  # type: ignore[attr-defined]
        out = json.dumps(
            {
                "text": body["text"],
                "intent": {"name": "from_rasa", "confidence": 0.9},
                "entities": [],
                "intent_ranking": [],
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def rasa_server() -> Iterator[HTTPServer]:
    srv = HTTPServer(("127.0.0.1", 0), _FakeRasa)
    srv.seen = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


async def test_rasa_backend_and_fallback_when_down(
    model: EmbeddedNLU, rasa_server: HTTPServer
) -> None:
    url = f"http://127.0.0.1:{rasa_server.server_address[1]}"
    backend = RasaBackend(url, EmbeddedBackend(model, 0.25, {}), token="t0k")
    try:
        out = await backend.parse("Do you ship to Norway?")
        assert out["intent"]["name"] == "from_rasa" and out["language"] == "en"
        assert rasa_server.seen[0][0] == "/model/parse?token=t0k"  # type: ignore[attr-defined]
        rasa_server.shutdown()
        rasa_server.server_close()
        down = await backend.parse("Do you ship to Norway?")
        assert down["intent"]["name"] == "faq/shipping"
        assert backend.failures == 1
    finally:
        await backend.aclose()


def test_responses_are_read_and_split_into_sentences(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "responses.yml").write_text(
        'version: "3.1"\nresponses:\n  utter_faq/warranty:\n  - text: "Three years. Parts: 6 months."\n'
        '  utter_greet:\n  - text: "Hi!"\n  - image: "x.png"\n  not_a_response: 1\n'
    )
    assert load_responses(tmp_path / "en" / "responses.yml") == {
        "faq/warranty": ["Three years. Parts: 6 months."],
        "greet": ["Hi!"],
    }
    assert load_responses(tmp_path / "missing.yml") == {}
    assert answer_parts("Three years. Parts: 6 months.") == [
        "Three years. Parts: 6 months.",
        "Three years.",
        "Parts: 6 months.",
    ]
    assert answer_parts("Hi!") == ["Hi!"]


def test_the_answers_teach_the_model_their_vocabulary(tmp_path: Path) -> None:
    content = tmp_path / "c"
    (content / "en").mkdir(parents=True)
    (content / "en" / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: faq/warranty\n  examples: |\n    - is it guaranteed\n'
        "    - what if it breaks\n- intent: faq/returns\n  examples: |\n    - can I send it back\n"
        "    - I want my money back\n"
    )
    (content / "en" / "responses.yml").write_text(
        'version: "3.1"\nresponses:\n  utter_faq/warranty:\n'
        '  - text: "Our machines come with a 3-year warranty covering gaskets."\n'
    )
    data = load_content(content)
    assert find_responses(data["en"]) == {
        "faq/warranty": ["Our machines come with a 3-year warranty covering gaskets."]
    }
    m = EmbeddedNLU.train(data)
    assert m.parse("are gaskets covered by the warranty", threshold=0.0).intent == "faq/warranty"
    without = EmbeddedNLU.train(data, responses={})
    clf = m.intents["en"]
    assert clf.coef.dtype == np.float32 and clf.coef.shape[0] == 2  # binary: both rows kept
    assert len(clf.example_class) > len(without.intents["en"].example_class)


def test_the_fast_parse_features_equal_sklearns(model: EmbeddedNLU) -> None:
    clf = model.intents["hu"]
    for text in ("Van árgarancia?", "mennyi a garancia a kavegepre", "", "!!!", "zzz qqq"):
        idx, val = clf._row(text)
        dense = np.zeros(clf.coef.shape[1])
        dense[idx] = val
        assert np.allclose(dense, clf._features([text]).toarray()[0], atol=1e-6)
    assert model.parse("", threshold=0.25).intent == FALLBACK


def test_the_fast_language_and_similarity_paths_equal_sklearns(model: EmbeddedNLU) -> None:
    li = model.langid
    clf = model.intents["pl"]
    for text in ("Czy wysyłacie do Norwegii?", "hello", "Wie lange dauert es", "", "zzz qqq"):
        p = li.clf.predict_proba(li.vec.transform([surface(text)]))[0]
        lang, conf = li.predict(text)
        assert (lang, conf) == pytest.approx((str(li.clf.classes_[int(np.argmax(p))]), p.max()))
        idx, val = clf._row(text)
        every = (clf.examples[idx].T @ val).ravel()
        for c in range(len(clf.classes)):  # the examples of one class, in their order
            got = clf._similarities(c, idx, val)
            assert np.allclose(got, every[clf.example_class == c], atol=1e-5)
