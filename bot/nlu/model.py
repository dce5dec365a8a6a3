"""The embedded NLU model: language identification, intent classification, entities.

Trained in seconds on a CPU from the shop's own Rasa data, no download:
- language and intents: the n-gram models of ``bot.nlu.ngram``; the examples of every
  language and the answers of ``responses.yml`` (down-weighted) are training data too
  (``bot.nlu.training``);
- optionally a semantic tier (``bot.nlu.encoder``, ``bot.nlu.semantic``) fused with them
  (``bot.nlu.fusion``), run only when the n-gram model is unsure, with a confidence calibrated
  by cross-validation;
- out of scope: the confidence (a softmax of the SVM scores, damped far from every training
  example of the intent) must pass a threshold (global, or per intent), else the result is
  ``nlu_fallback`` as Rasa's FallbackClassifier names it;
- entities: regexes, lookup tables and synonyms from the data (``bot.nlu.entities``).

This module holds the model as a whole: its parse, and its file format (save and load).
"""

from __future__ import annotations

import hashlib
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np
from threadpoolctl import threadpool_limits

from bot.nlu.answers import find_responses
from bot.nlu.data import TrainingData, language_folders
from bot.nlu.encoder import NONE, Encoder, encoder_version, load_encoder, normalise
from bot.nlu.entities import EntityExtractor
from bot.nlu.foreign import unserved_language
from bot.nlu.fusion import FUSION_WEIGHT, fuse
from bot.nlu.ngram import IntentClassifier, LanguageIdentifier
from bot.nlu.semantic import Calibrator, SemanticHead, features
from bot.nlu.training import Pool, cross_validate, fit_language, training_pool

FALLBACK = "nlu_fallback"
MODEL_FILE = "model.pkl"
FORMAT = 4  # 4: the calibrator sees seven features of a parse (was four)
FAST_BAR = 0.97  # the n-gram model alone at least this sure (calibrated): no encoding
# the modules whose code the model is (a change retrains, whatever FORMAT says)
CODE = (
    "model.py",
    "ngram.py",
    "entities.py",
    "answers.py",
    "training.py",
    "fusion.py",
    "text.py",
    "cues.py",
    "concepts.py",
    "semantic.py",
    "encoder.py",
    "foreign.py",
)


class ParseOptions(TypedDict, total=False):
    """What a parse may override: the threshold to answer at (with an encoder, the target
    precision), and per intent."""

    threshold: float | None
    topic_thresholds: dict[str, float] | None


@dataclass
class ParseResult:
    text: str
    intent: str
    confidence: float
    ranking: list[tuple[str, float]]
    language: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    out_of_scope: bool = False  # far from every topic: fall back honestly, no "did you mean"
    language_not_served: str | None = None  # clearly written in a language not configured

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "intent": {"name": self.intent, "confidence": round(self.confidence, 6)},
            "entities": self.entities,
            "intent_ranking": [
                {"name": n, "confidence": round(c, 6)} for n, c in self.ranking[:10]
            ],
            "language": self.language,
        }
        if self.out_of_scope:
            out["out_of_scope"] = True
        if self.language_not_served:
            out["language_not_served"] = self.language_not_served
        return out


class ModelMismatchError(ValueError):
    """A saved model that this configuration must not use (another encoder or version)."""


class EmbeddedNLU:
    def __init__(self) -> None:
        self.languages: list[str] = []
        self.langid = LanguageIdentifier()
        self.intents: dict[str, IntentClassifier] = {}
        self.entities: dict[str, EntityExtractor] = {}
        self.content_hash = ""
        self.trained_at = 0.0
        self.threshold = 0.3
        self.topic_thresholds: dict[str, float] = {}
        # the semantic tier (bot.nlu.encoder, bot.nlu.semantic); "none": the n-gram model only
        self.encoder_name = NONE
        self.encoder_version = ""
        self.semantic: dict[str, SemanticHead] = {}
        self.calibrator: Calibrator | None = None  # fused scores -> P(right)
        self.fast_calibrator: Calibrator | None = None  # n-gram scores -> P(right)
        self.fusion_weight = FUSION_WEIGHT
        self.fast_bar = FAST_BAR
        self.far_floor = 0.0
        self.cv: list[tuple[float, bool]] = []  # out-of-fold (confidence, right) of training
        self._encoder: Encoder | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_encoder"] = None  # the encoder ships with its package, not in the model file
        return state

    @property
    def encoder(self) -> Encoder | None:
        if self.encoder_name == NONE:
            return None
        if self._encoder is None:
            self._encoder = load_encoder(self.encoder_name)
        return self._encoder

    @classmethod
    def train(
        cls,
        data: dict[str, TrainingData],
        *,
        languages: list[str] | None = None,
        content_hash: str = "",
        responses: dict[str, dict[str, list[str]]] | None = None,
        encoder: Encoder | None = None,
        calibrate: bool = True,
    ) -> EmbeddedNLU:
        """Train on ``data``; ``responses`` (``{lang: {intent: [answer text]}}``) default to
        the ``responses.yml`` beside each language's training files. With an ``encoder``,
        the semantic tier too and (``calibrate``) the confidence calibration, by
        cross-validation on each language's examples."""
        # one BLAS thread: on a busy two-core machine more made the fits 30x slower
        with threadpool_limits(limits=1):
            return cls._train(data, languages, content_hash, responses, encoder, calibrate)

    @classmethod
    def _train(
        cls,
        data: dict[str, TrainingData],
        languages: list[str] | None,
        content_hash: str,
        responses: dict[str, dict[str, list[str]]] | None,
        encoder: Encoder | None,
        calibrate: bool,
    ) -> EmbeddedNLU:
        nlu = cls()
        langs = [lang for lang in data if languages is None or lang in languages]
        if not langs:
            raise ValueError("no training data for the configured languages")
        if responses is None:
            responses = {lang: find_responses(data[lang]) for lang in langs}
        texts, labels = [], []
        pools: dict[str, Pool] = {}
        for lang in langs:
            d = data[lang]
            if len({e.intent for e in d.examples}) < 2:
                raise ValueError(f"language {lang!r} needs examples of at least two intents")
            texts += [e.text for e in d.examples]
            labels += [lang] * len(d.examples)
            pools[lang] = training_pool(lang, data, langs, responses)
            nlu.entities[lang] = EntityExtractor(d)
        table: dict[str, np.ndarray] = {}
        if encoder is not None:
            nlu.encoder_name, nlu.encoder_version = encoder.name, encoder.version
            nlu._encoder = encoder
            unique = sorted({normalise(t) for pool in pools.values() for t, *_ in pool})
            # in chunks: one batch of every text made the engine's peak memory 480 MB
            rows = [encoder.encode(unique[i : i + 64]) for i in range(0, len(unique), 64)]
            table = dict(zip(unique, np.concatenate(rows) if rows else [], strict=True))
        for lang in langs:
            nlu.intents[lang], head = fit_language(lang, pools[lang], table)
            if head is not None:
                nlu.semantic[lang] = head
        if encoder is not None and calibrate:
            cal = cross_validate(data, pools, table, nlu._encode)
            nlu.fusion_weight, nlu.cv, nlu.far_floor = cal.fusion_weight, cal.cv, cal.far_floor
            nlu.fast_calibrator, nlu.calibrator = cal.fast_calibrator, cal.calibrator
        nlu.langid.fit(texts, labels)
        nlu.languages = langs
        nlu.content_hash = content_hash
        nlu.trained_at = time.time()
        return nlu

    def _cached(self, text: str) -> bool:
        cached = getattr(self.encoder, "cached", None)
        return bool(callable(cached) and cached(text))

    def _encode(self, text: str) -> np.ndarray:
        enc = self.encoder
        if enc is None:
            raise RuntimeError("this model has no encoder")
        return np.asarray(enc.encode([text])[0], dtype=np.float32)

    def detect_language(self, text: str, hint: str | None = None) -> str:
        lang, conf = self.langid.predict(text)
        # a short or ambiguous text ("ok", "Klarna?") keeps the person's known language
        if hint in self.languages and lang != hint and (conf < 0.6 or len(text) < 12):
            return str(hint)
        return lang

    def parse(
        self, text: str, language_hint: str | None = None, **options: Unpack[ParseOptions]
    ) -> ParseResult:
        """With an encoder, ``confidence`` is the calibrated probability that the intent is
        right and ``threshold`` the precision to answer at; ``out_of_scope`` when the text is
        farther from every training example than nearly all of them are from each other."""
        result = self.parse_fast(text, language_hint, **options)
        if result is None:
            result = self.parse_fast(text, language_hint, may_encode=True, **options)
        assert result is not None
        return result

    def parse_fast(
        self,
        text: str,
        language_hint: str | None = None,
        *,
        may_encode: bool = False,
        **options: Unpack[ParseOptions],
    ) -> ParseResult | None:
        """:meth:`parse` without running the encoder (cached encodings are used): None when
        the n-gram model is unsure and the text's encoding is not cached (parse it in a
        thread then, with ``may_encode``)."""
        threshold = options.get("threshold")
        topic_thresholds = options.get("topic_thresholds")
        foreign = unserved_language(text, self.languages)
        if foreign is not None:
            return ParseResult(
                text=text,
                intent=FALLBACK,
                confidence=1.0,
                ranking=[],
                language=None,
                language_not_served=foreign,
            )
        lang = self.detect_language(text, language_hint)
        clf = self.intents[lang]
        p_ng, near_ng = clf.scores(text)
        far = False
        head = self.semantic.get(lang)
        if head is None:
            p = clf.damp(p_ng, near_ng)
            conf = float(p.max())
        else:
            fast = self.fast_calibrator
            conf = fast(features(p_ng, [])) if fast is not None else 0.0
            p = p_ng
            if fast is None or conf < self.fast_bar:  # the n-gram model is unsure: encode
                if not may_encode and not self._cached(text):
                    return None
                e = self._encode(text)
                p, fused, near_all = fuse(self.fusion_weight, head, p_ng, e)
                cal = self.calibrator
                conf = cal(fused) if cal is not None else float(p.max())
                far = near_all < self.far_floor
        order = np.argsort(-p)
        ranking = [(clf.classes[i], float(p[i])) for i in order[:10]]
        name = ranking[0][0]
        limit = (topic_thresholds or self.topic_thresholds).get(
            name, self.threshold if threshold is None else threshold
        )
        if far or conf < limit:
            name, conf = FALLBACK, (limit if head is None else conf)
        return ParseResult(
            text=text,
            intent=name,
            confidence=conf,
            ranking=ranking,
            language=lang,
            entities=self.entities[lang].extract(text),
            out_of_scope=far,
        )

    # --- persistence ------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (MODEL_FILE + ".tmp")
        with tmp.open("wb") as f:
            pickle.dump(
                {
                    "format": FORMAT,
                    "encoder": self.encoder_name,
                    "encoder_version": self.encoder_version,
                    "model": self,
                },
                f,
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        tmp.replace(folder / MODEL_FILE)
        return folder / MODEL_FILE

    @classmethod
    def load(cls, folder: Path, encoder: str | None = None) -> EmbeddedNLU:
        """Load a model this program saved (a model folder is trusted: pickle). ``encoder``:
        the configured encoder; a model trained with another one, or with another version
        of it, is refused (:class:`ModelMismatchError`, one line saying to retrain)."""
        path = folder / MODEL_FILE
        with path.open("rb") as f:
            blob = pickle.load(f)  # noqa: S301 - our own model file, written by save()
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ModelMismatchError(f"{path} was written by another version; retrain")
        trained = str(blob.get("encoder", NONE))
        version = str(blob.get("encoder_version", ""))
        wanted = trained if encoder is None else encoder
        if trained != wanted:
            raise ModelMismatchError(
                f"{path} was trained with NLU encoder {trained!r}, configured {wanted!r}: "
                "retrain (concierge nlu train, or concierge run retrains by itself)"
            )
        if trained != NONE and version != encoder_version(trained):
            raise ModelMismatchError(
                f"{path} was trained with {version}, installed {encoder_version(trained)}: "
                "retrain (concierge nlu train, or concierge run retrains by itself)"
            )
        model = blob["model"]
        if not isinstance(model, cls):
            raise ValueError(f"{path} is not a Concierge NLU model")
        return model


def content_hash(content: Path) -> str:
    """A hash of every training file (nlu and responses), to tell a stale model."""
    h = hashlib.sha256(f"format={FORMAT}".encode())
    # changed model code (the classifier, its text analysis, cue and concept lists) retrains,
    # whatever FORMAT says
    here = Path(__file__).parent
    for code in CODE:
        h.update((here / code).read_bytes())
    files = []
    if content.is_file():
        files = [content]
    else:
        for folder in language_folders(content).values():
            files += sorted(folder.glob("*.yml"))
    for f in files:
        h.update(str(f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
