"""NLU benchmark: MASSIVE, the frozen paraphrase set, BANKING77, the reference shop (5-fold),
out-of-scope, parse latency, memory.

    python bench/nlu_benchmark.py [--encoder e5|none|both] [--skip-banking] [--skip-massive]
                                  [--skip-shop] [--skip-memory]

Prints, for each encoder asked (``none``: the n-gram model alone; ``e5``: with the semantic
tier): MASSIVE held-out accuracy per language (20% by a stable hash of the text; trained on the
other 80%, and on 10 examples per intent from it, median of 3 draws); the frozen own-shop
paraphrase set (bench/data/paraphrases/, never tuned on) answered right / wrong / clarified /
rejected, top-3 and out-of-scope; parse p50/p99 on distinct texts (encoder cache cold);
BANKING77 accuracy, training seconds; per-language 5-fold accuracy and language identification on
../shared/reference-shop; the share of out-of-scope questions (written for this benchmark,
below) answered ``nlu_fallback``; the same 5-fold accuracy on our own demo content; RSS of a
server process with all five languages loaded. Encodings of MASSIVE and BANKING77 are kept in
.cache/bench-embeddings/ between runs (encoding them costs minutes on two shared cores).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import paraphrase_set  # noqa: E402
from embed_cache import embeddings  # noqa: E402

from bot.nlu.answers import find_responses  # noqa: E402
from bot.nlu.data import Example, TrainingData, load_content, load_nlu_file  # noqa: E402
from bot.nlu.encoder import E5Encoder, Encoder, load_encoder, normalise  # noqa: E402
from bot.nlu.model import FALLBACK, EmbeddedNLU  # noqa: E402

SHARED = REPO.parent / "shared"
MASSIVE = SHARED / "bench-data" / "massive"
TARGET = 0.9  # the default target precision (CONCIERGE_NLU_TARGET_PRECISION)
SHOP = SHARED / "reference-shop" / "nlu_data"
BANKING = SHARED / "bench-data" / "banking77"

# Questions a shop's FAQ does not cover: off-topic, and shop-related but outside the FAQ (the
# last ten per language were added with the shop concepts, written before measuring them)
OOS = {
    "en": [
        "What's the weather in Paris tomorrow?",
        "Can you recommend a good pizza place?",
        "Who won the football match yesterday?",
        "How do I reset my router?",
        "Do you sell refrigerators?",
        "Can you help me with my tax return?",
        "Tell me a joke",
        "What time is it in Tokyo?",
        "Are you hiring baristas?",
        "Is your company listed on the stock exchange?",
        "How do I bake sourdough bread?",
        "What is the capital of Australia?",
        "Can you write me a poem about cats?",
        "My car makes a strange noise, what should I do?",
        "Do you sell laptops?",
        "What's the best movie this year?",
        "How many calories are in a banana?",
        "Can I book a hotel through you?",
        "Translate 'good morning' into Japanese",
        "Where is the nearest train station?",
    ],
    "de": [
        "Wie wird das Wetter morgen in Berlin?",
        "Kannst du mir ein gutes Restaurant empfehlen?",
        "Wer hat gestern das Fußballspiel gewonnen?",
        "Wie setze ich meinen Router zurück?",
        "Verkauft ihr auch Kühlschränke?",
        "Hilfst du mir bei der Steuererklärung?",
        "Erzähl mir einen Witz",
        "Wie spät ist es in Tokio?",
        "Sucht ihr gerade Mitarbeiter?",
        "Ist eure Firma an der Börse?",
        "Wie backe ich ein Sauerteigbrot?",
        "Was ist die Hauptstadt von Australien?",
        "Schreib mir ein Gedicht über Katzen",
        "Mein Auto macht komische Geräusche, was tun?",
        "Verkauft ihr Laptops?",
        "Welcher Film ist dieses Jahr der beste?",
        "Wie viele Kalorien hat eine Banane?",
        "Kann ich bei euch ein Hotel buchen?",
        "Übersetze guten Morgen ins Japanische",
        "Wo ist der nächste Bahnhof?",
    ],
    "hu": [
        "Milyen idő lesz holnap Budapesten?",
        "Tudsz ajánlani egy jó éttermet?",
        "Ki nyerte a tegnapi focimeccset?",
        "Hogyan állítsam vissza a routeremet?",
        "Árultok hűtőszekrényt is?",
        "Segítesz az adóbevallásomban?",
        "Mondj egy viccet",
        "Mennyi az idő Tokióban?",
        "Kerestek most munkatársakat?",
        "Tőzsdén van a cégetek?",
        "Hogyan süssek kovászos kenyeret?",
        "Mi Ausztrália fővárosa?",
        "Írnál nekem egy verset a macskákról?",
        "Furcsa hangot ad az autóm, mit csináljak?",
        "Árultok laptopokat?",
        "Melyik az idei legjobb film?",
        "Hány kalória van egy banánban?",
        "Foglalhatok rajtatok keresztül szállodát?",
        "Fordítsd le japánra, hogy jó reggelt",
        "Hol van a legközelebbi vasútállomás?",
    ],
    "sv": [
        "Hur blir vädret i Stockholm i morgon?",
        "Kan du rekommendera en bra restaurang?",
        "Vem vann fotbollsmatchen igår?",
        "Hur återställer jag min router?",
        "Säljer ni kylskåp?",
        "Kan du hjälpa mig med deklarationen?",
        "Berätta ett skämt",
        "Vad är klockan i Tokyo?",
        "Söker ni personal just nu?",
        "Är ert företag börsnoterat?",
        "Hur bakar jag surdegsbröd?",
        "Vad är huvudstaden i Australien?",
        "Kan du skriva en dikt om katter?",
        "Min bil låter konstigt, vad ska jag göra?",
        "Säljer ni bärbara datorer?",
        "Vilken är årets bästa film?",
        "Hur många kalorier har en banan?",
        "Kan jag boka hotell via er?",
        "Översätt god morgon till japanska",
        "Var ligger närmaste tågstation?",
    ],
    "pl": [
        "Jaka będzie jutro pogoda w Warszawie?",
        "Możesz polecić dobrą restaurację?",
        "Kto wygrał wczorajszy mecz?",
        "Jak zresetować router?",
        "Czy sprzedajecie lodówki?",
        "Pomożesz mi z zeznaniem podatkowym?",
        "Opowiedz dowcip",
        "Która jest godzina w Tokio?",
        "Czy szukacie pracowników?",
        "Czy wasza firma jest na giełdzie?",
        "Jak upiec chleb na zakwasie?",
        "Jaka jest stolica Australii?",
        "Napiszesz mi wiersz o kotach?",
        "Mój samochód dziwnie hałasuje, co robić?",
        "Sprzedajecie laptopy?",
        "Jaki jest najlepszy film w tym roku?",
        "Ile kalorii ma banan?",
        "Czy mogę zarezerwować u was hotel?",
        "Przetłumacz dzień dobry na japoński",
        "Gdzie jest najbliższy dworzec?",
    ],
}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


class TableEncoder:
    """The e5 encoder, served from encodings computed beforehand (the disk cache)."""

    def __init__(self, real: E5Encoder, table: dict[str, np.ndarray]) -> None:
        self.name, self.version, self.dim = real.name, real.version, real.dim
        self.real, self.table = real, table

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [self.table.get(normalise(t)) for t in texts]
        missing = [t for t, r in zip(texts, rows, strict=True) if r is None]
        if missing:
            new = iter(self.real.encode(missing))
            rows = [r if r is not None else next(new) for r in rows]
        return np.stack(rows)


def table_encoder(encoder: Encoder | None, label: str, texts: list[str]) -> Encoder | None:
    if not isinstance(encoder, E5Encoder):
        return encoder
    rows = embeddings(encoder, label, texts)
    return TableEncoder(encoder, {normalise(t): r for t, r in zip(texts, rows, strict=True)})


def banking(encoder: Encoder | None) -> None:
    train = load_nlu_file(BANKING / "train.yml", "en")
    test = load_nlu_file(BANKING / "test.yml", "en")
    enc = table_encoder(
        encoder, "banking77", [e.text for e in train.examples] + [e.text for e in test.examples]
    )
    t = time.perf_counter()
    model = EmbeddedNLU.train({"en": train}, encoder=enc, calibrate=False)
    secs = time.perf_counter() - t
    lat, right = [], 0
    for ex in test.examples:
        t = time.perf_counter()
        r = model.parse(ex.text, "en", threshold=0.0)
        lat.append((time.perf_counter() - t) * 1000)
        right += (r.ranking or [("", 0.0)])[0][0] == ex.intent
    print(
        f"BANKING77 [{name_of(encoder)}]: accuracy {right / len(test.examples):.3f} "
        f"({len(test.examples)} test), training {secs:.1f} s (encodings from the cache), "
        f"parse p50 {statistics.median(lat):.2f} ms p99 {pct(lat, 99):.2f} ms "
        f"(encodings from the cache)",
        flush=True,
    )


def name_of(encoder: Encoder | None) -> str:
    return "none" if encoder is None else encoder.name


def stable(text: str, salt: str = "") -> int:
    return int(hashlib.sha256(f"{salt}{text}".encode()).hexdigest()[:12], 16)


def accuracy_of(
    lang: str, enc: Encoder | None, train: list[Example], test: list[Example]
) -> tuple[float, float]:
    """Top-1 accuracy on ``test`` of a model trained on ``train`` as the server trains it
    (with an encoder, the cross-validation chooses the head's share of the fused
    probabilities); training seconds."""
    t = time.perf_counter()
    m = EmbeddedNLU.train({lang: TrainingData(lang, train)}, responses={}, encoder=enc)
    secs = time.perf_counter() - t
    # a text taken for a language the one-language model does not serve (e.g. English words
    # in a German request) has no ranking: counted wrong
    right = sum((m.parse(e.text, lang).ranking or [("", 0.0)])[0][0] == e.intent for e in test)
    return right / len(test), secs


def massive(encoder: Encoder | None, langs: list[str]) -> None:
    """Held out: 20% by a stable hash of the text; full = the other 80%; 10-shot = 10 per
    intent from the 80% (ordered by a salted stable hash), median of 3 draws."""
    for lang in langs:
        d = load_nlu_file(MASSIVE / lang / "train.yml", lang)
        test = [e for e in d.examples if stable(e.text) % 5 == 0]
        pool = [e for e in d.examples if stable(e.text) % 5 != 0]
        enc = table_encoder(encoder, f"massive-{lang}", [e.text for e in d.examples])

        full, secs = accuracy_of(lang, enc, pool, test)
        shots = []
        for draw in range(3):
            by_intent: dict[str, list[Example]] = {}
            for e in sorted(pool, key=lambda e: stable(e.text, f"draw{draw}:")):
                by_intent.setdefault(e.intent, []).append(e)
            few = [e for es in by_intent.values() for e in es[:10]]
            shots.append(accuracy_of(lang, enc, few, test)[0])
        print(
            f"MASSIVE {lang} [{name_of(encoder)}]: held-out {len(test)}, full data "
            f"({len(pool)} examples) {full:.3f} (training {secs:.1f} s), 10-shot median "
            f"{statistics.median(shots):.3f} (draws {' '.join(f'{a:.3f}' for a in shots)})",
            flush=True,
        )


def massive_training_time(encoder: Encoder | None, lang: str = "en") -> None:
    """What the product pays for one MASSIVE language: training with the calibration
    (cross-validation), and the encoding of its texts at the measured rate."""
    d = load_nlu_file(MASSIVE / lang / "train.yml", lang)
    pool = [e for e in d.examples if stable(e.text) % 5 != 0]
    enc = table_encoder(encoder, f"massive-{lang}", [e.text for e in d.examples])
    t = time.perf_counter()
    EmbeddedNLU.train({lang: TrainingData(lang, pool)}, responses={}, encoder=enc)
    secs = time.perf_counter() - t
    extra = ""
    if isinstance(encoder, E5Encoder):
        sample = [e.text for e in pool[:200]]
        t = time.perf_counter()
        encoder.encode(sample, use_cache=False)
        rate = len(sample) / (time.perf_counter() - t)
        extra = (
            f"; encoding its {len(pool)} texts: {len(pool) / rate:.0f} s more at "
            f"{rate:.0f} texts/s (batches, one thread)"
        )
    print(
        f"MASSIVE {lang} [{name_of(encoder)}]: training with calibration {secs:.1f} s "
        f"(encodings from the cache){extra}",
        flush=True,
    )


def paraphrases(encoder: Encoder | None) -> None:
    """The frozen own-shop paraphrase set, on a model trained as the server trains it."""
    data = load_content(REPO / "nlu_data")
    t = time.perf_counter()
    model = EmbeddedNLU.train(data, encoder=encoder)
    secs = time.perf_counter() - t
    threshold = TARGET if model.calibrator is not None else 0.3
    lat: list[float] = []

    def parse(text: str, hint: str) -> dict[str, object]:
        t = time.perf_counter()
        r = model.parse(text, hint, threshold=threshold).to_rasa()
        lat.append((time.perf_counter() - t) * 1000)
        return r

    for lang in paraphrase_set.LANGUAGES:
        s = paraphrase_set.score(parse, paraphrase_set.load(lang))
        print(f"paraphrases {lang} [{name_of(encoder)}] at {threshold}: {s.line()}", flush=True)
        if model.calibrator is not None:  # the confidence is P(right): the gap, other targets
            print(f"  {lang} gap: {s.gap()} | {s.at(0.95)} | {s.at(0.8)} | {s.at(0.7)}", flush=True)
    print(
        f"paraphrases [{name_of(encoder)}]: demo content trained in {secs:.1f} s; parse of "
        f"{len(lat)} distinct texts (encoder cache cold) p50 {statistics.median(lat):.2f} ms "
        f"p99 {pct(lat, 99):.2f} ms",
        flush=True,
    )


SPLITS = (0, 1, 2)  # three shufflings of the 5 folds: one split moves a language by +-1.5 points


def cross_validate(
    data: dict[str, TrainingData], responses: dict[str, dict[str, list[str]]], seed: int = 0
) -> dict[str, list[tuple[float, bool]]]:
    """5-fold per language (the other languages and all answers stay in every fold, as the
    server trains): each held-out example's (confidence, answered right)."""
    out: dict[str, list[tuple[float, bool]]] = {}
    for lang, d in data.items():
        ex = d.examples
        y = np.array([e.intent for e in ex])
        with warnings.catch_warnings():  # a few demo intents have fewer than five examples
            warnings.simplefilter("ignore", UserWarning)
            splits = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(ex, y))
        out[lang] = []
        for tr, te in splits:
            folds = dict(data)
            folds[lang] = TrainingData(language=lang, examples=[ex[i] for i in tr])
            m = EmbeddedNLU.train(folds, responses=responses)
            for i in te:
                r = m.parse(ex[i].text, lang, threshold=0.0)
                out[lang].append((r.confidence, r.intent == ex[i].intent))
    return out


def accuracy(results: list[tuple[float, bool]]) -> float:
    return sum(ok for _, ok in results) / len(results)


def own_content() -> None:
    """The same 5-fold check on our own demo content (nlu_data/): nothing was tuned on it."""
    data = load_content(REPO / "nlu_data")
    responses = {lang: find_responses(d) for lang, d in data.items()}
    runs = [cross_validate(data, responses, seed) for seed in SPLITS]
    figures = " ".join(
        f"{lang} {statistics.median(accuracy(r[lang]) for r in runs):.3f}" for lang in data
    )
    print(
        f"own content (nlu_data/) 5-fold intent accuracy, median of {len(runs)} splits: {figures}"
    )


def shop(threshold: float) -> None:
    data = load_content(SHOP)
    # the answers are not test data: every fold learns from all of them (as the server does)
    responses = {lang: find_responses(d) for lang, d in data.items()}
    runs = [cross_validate(data, responses, seed) for seed in SPLITS]
    results = runs[0]
    for lang in data:
        each = [accuracy(r[lang]) for r in runs]
        print(
            f"reference shop {lang}: 5-fold intent accuracy median {statistics.median(each):.3f} "
            f"(splits {' '.join(f'{a:.3f}' for a in each)})"
        )
    conf_ok = [x for r in results.values() for x in r]
    full = EmbeddedNLU.train(data, responses=responses)
    total = right = 0
    for lang, d in data.items():
        for e in d.examples:
            total += 1
            right += full.detect_language(e.text) == lang
    print(f"reference shop: language identification {right / total:.4f} ({total} examples)")
    oos = [full.parse(t, threshold=threshold) for ts in OOS.values() for t in ts]
    rejected = sum(r.intent == FALLBACK for r in oos) / len(oos)
    answered_right = sum(ok and c >= threshold for c, ok in conf_ok) / len(conf_ok)
    wrong = sum((not ok) and c >= threshold for c, ok in conf_ok) / len(conf_ok)
    print(
        f"out of scope (threshold {threshold}): {rejected:.2f} of {len(oos)} answered nlu_fallback; "
        f"in scope (held out): {answered_right:.2f} answered right, {wrong:.2f} answered wrong, "
        f"the rest clarified"
    )


def memory(encoder: str) -> None:
    # The server process's own peak (VmHWM of /proc/self/status). Not ru_maxrss: Linux carries
    # the parent's peak over fork and exec, so a child of this (big) process would report it.
    code = (  # noqa: UP031
        "import sys; sys.path.insert(0, %r)\n"
        "from channels.app import create_app\nfrom bot.settings import Settings\n"
        "d = sys.argv[1]\n"
        "app = create_app(Settings(_env_file=None, database_url=f'sqlite+aiosqlite:///{d}/x.db', model_dir=d + '/m', nlu_encoder=sys.argv[2]))\n"
        "rt = app.state.runtime; _ = rt.nlu\n"
        "import asyncio\n"
        "for t in ('hello', 'Do you ship to Norway?', 'Wie lange dauert die Lieferung?'):\n"
        "    asyncio.run(rt.nlu.parse(t))\n"
        "st = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "print(int(st['VmHWM'].split()[0]) // 1024, int(st['VmRSS'].split()[0]) // 1024)\n"
    ) % str(REPO)
    with tempfile.TemporaryDirectory() as d:
        for what in ("training the model at start", "loading the saved model"):
            out = subprocess.run(
                [sys.executable, "-c", code, d, encoder],
                capture_output=True,
                text=True,
                check=True,
            )
            peak, now = out.stdout.split()
            print(
                f"memory [{encoder}]: a server process with all five languages loaded ({what}): "
                f"{peak} MB peak RSS, {now} MB RSS after parsing"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", choices=("e5", "none", "both"), default="both")
    ap.add_argument("--skip-banking", action="store_true")
    ap.add_argument("--skip-massive", action="store_true")
    ap.add_argument("--skip-shop", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--massive-languages", default="en,de,hu,sv,pl")
    ap.add_argument("--threshold", type=float, default=0.3)
    args = ap.parse_args()
    need = [SHOP] + ([] if args.skip_banking else [BANKING])
    if missing := [p for p in need if not p.is_dir()]:
        # the benchmark data is not part of the repository (tests never need it)
        sys.exit(
            f"missing benchmark data: {', '.join(map(str, missing))}. Put the project's shared/ "
            f"folder (reference-shop/, bench-data/) beside the repository, at {SHARED}; "
            "--skip-banking runs without bench-data/banking77."
        )
    print(f"cpus={os.cpu_count()}")
    names = ["none", "e5"] if args.encoder == "both" else [args.encoder]
    for name in names:
        encoder = load_encoder(name)
        paraphrases(encoder)
        if not args.skip_massive:
            massive(encoder, args.massive_languages.split(","))
            massive_training_time(encoder)
        if not args.skip_banking:
            banking(encoder)
    if not args.skip_shop:
        shop(args.threshold)
        own_content()
    if not args.skip_memory:
        for name in names:
            memory(name)
    print(
        f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB max RSS)"
    )


if __name__ == "__main__":
    main()
