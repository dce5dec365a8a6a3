"""NLU benchmark: BANKING77, the reference shop (5-fold), out-of-scope, memory.

    python bench/nlu_benchmark.py [--skip-banking]

Prints: BANKING77 accuracy, training seconds, parse p50/p99; per-language 5-fold accuracy and
language identification on ../shared/reference-shop; the share of out-of-scope questions
(written for this benchmark, below) answered ``nlu_fallback`` and in-scope accuracy at the same
threshold; the same 5-fold accuracy on our own demo content (nlu_data/, a check that a gain is
not fitted to the reference shop); RSS of a process with all five languages loaded.
"""

from __future__ import annotations

import argparse
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

from bot.nlu.data import TrainingData, load_content, load_nlu_file  # noqa: E402
from bot.nlu.model import FALLBACK, EmbeddedNLU, find_responses  # noqa: E402

SHARED = REPO.parent / "shared"
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


def banking() -> None:
    train = load_nlu_file(BANKING / "train.yml", "en")
    test = load_nlu_file(BANKING / "test.yml", "en")
    t = time.perf_counter()
    model = EmbeddedNLU.train({"en": train})
    secs = time.perf_counter() - t
    lat, right = [], 0
    for ex in test.examples:
        t = time.perf_counter()
        r = model.parse(ex.text, "en", threshold=0.0)
        lat.append((time.perf_counter() - t) * 1000)
        right += r.intent == ex.intent
    print(
        f"BANKING77: accuracy {right / len(test.examples):.3f} ({len(test.examples)} test), "
        f"training {secs:.1f} s, parse p50 {statistics.median(lat):.2f} ms p99 {pct(lat, 99):.2f} ms"
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
            right += full.detect_language(e.text)[0] == lang
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


def memory() -> None:
    # The server process's own peak (VmHWM of /proc/self/status). Not ru_maxrss: Linux carries
    # the parent's peak over fork and exec, so a child of this (big) process would report it.
    code = (  # noqa: UP031
        "import sys; sys.path.insert(0, %r)\n"
        "from channels.app import create_app\nfrom bot.settings import Settings\n"
        "d = sys.argv[1]\n"
        "app = create_app(Settings(_env_file=None, database_url=f'sqlite+aiosqlite:///{d}/x.db', model_dir=d + '/m'))\n"
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
                [sys.executable, "-c", code, d], capture_output=True, text=True, check=True
            )
            peak, now = out.stdout.split()
            print(
                f"memory: a server process with all five languages loaded ({what}): "
                f"{peak} MB peak RSS, {now} MB RSS after parsing"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-banking", action="store_true")
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
    if not args.skip_banking:
        banking()
    shop(args.threshold)
    own_content()
    memory()
    print(
        f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB max RSS)"
    )


if __name__ == "__main__":
    main()
