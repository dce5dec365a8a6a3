"""The embedded NLU model: language identification, intent classification, entities.

Trained in seconds on a CPU from the shop's own Rasa data, no download:
- language: character n-grams (1-4) of the folded text, a linear model over the configured
  languages only;
- intent, per language: word n-grams of stemmed, accent-folded words (with dialogue-act cues,
  ``bot.nlu.cues``: 5-fold 85.1% -> 86.5% on the reference shop) plus character n-grams
  (2-5, within words, counted twice) of the folded text, weighted TF-IDF, one linear SVM; typos
  and missing accents land on the same character n-grams; the examples of every language and
  the answers of ``responses.yml`` (down-weighted) are training data too;
- out of scope: the confidence (a softmax of the SVM scores, damped far from every training
  example of the intent) must pass a threshold (global, or per intent), else the result is
  ``nlu_fallback`` as Rasa's FallbackClassifier names it;
- entities: regexes, lookup tables (whole words, folded) and synonyms from the data.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from bot.nlu.data import TrainingData, language_folders
from bot.nlu.encoder import NONE, Encoder, encoder_version, load_encoder, normalise
from bot.nlu.foreign import unserved_language
from bot.nlu.semantic import Calibrator, SemanticHead, features
from bot.nlu.text import analyse, fold, surface

FALLBACK = "nlu_fallback"
MODEL_FILE = "model.pkl"
FORMAT = 4  # 4: the calibrator sees seven features of a parse (was four)
RESPONSE_FILE = "responses.yml"
OWN_RESPONSE_WEIGHT = 0.5  # an answer sentence, as a training example of its intent
OTHER_RESPONSE_WEIGHT = 0.3  # ... in another language
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass
class ParseResult:
    text: str
    intent: str
    confidence: float
    ranking: list[tuple[str, float]]
    language: str | None
    language_confidence: float = 1.0
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


def _tfidf(vec: TfidfVectorizer, doc: str) -> tuple[np.ndarray, np.ndarray]:
    """``vec.transform([doc])`` as (indices, values) for a fitted vectorizer with
    ``sublinear_tf`` and l2 norm."""
    vocab = vec.vocabulary_
    counts: dict[int, int] = {}
    for term in vec.build_analyzer()(doc):
        j = vocab.get(term)
        if j is not None:
            counts[j] = counts.get(j, 0) + 1
    idx = np.fromiter(counts, dtype=np.intp, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    val = (1.0 + np.log(tf)) * vec.idf_[idx]
    norm = float(np.sqrt(val @ val))
    return idx, (val / norm if norm > 0 else val)


class IntentClassifier:
    """Intents of one language.

    A linear SVM (one-vs-rest) over the features; its scores become a confidence with a
    softmax (``temperature``), damped when the text is far from every training example of the
    winning intent (cosine similarity below ``similarity_floor``). Measured on the reference
    shop (bench/nlu_benchmark.py) against the logistic regression it replaces: 5-fold accuracy
    81.4% -> 85.1% (all changes), out-of-scope caught at threshold 0.25 74% -> 80%, held-out
    answered wrong 9% -> 5%; temperature and floor were chosen on held-out folds and other
    out-of-scope questions than the benchmark's.
    """

    def __init__(
        self,
        language: str,
        c: float = 1.0,
        temperature: float = 3.0,
        similarity_floor: float = 0.3,
        char_weight: float = 1.0,
    ) -> None:
        self.language = language
        self.c = c
        self.temperature = temperature
        self.similarity_floor = similarity_floor
        # the character block counts as much as the word block: twice as much was better
        # (83.5% -> 85.1% 5-fold) until the words carried the shop concepts; with them 2.0
        # -> 1.0 is 92.0% -> 93.2% on the reference shop, 88.1% -> 89.4% on nlu_data/
        self.char_weight = char_weight
        self.words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - not a password
            min_df=1,
            dtype=np.float32,
        )
        self.chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1, dtype=np.float32
        )
        self.classes: list[str] = []
        self.coef = np.zeros((0, 0), dtype=np.float32)  # classes x features
        self.intercept = np.zeros(0, dtype=np.float32)
        # features x training examples (L2-normalised, CSR: a text's similarity to every
        # example touches only the rows of its own features)
        self.examples: Any = None
        self.example_class = np.zeros(0, dtype=np.int32)
        # the same, split by class (features x that class's examples): a parse only needs
        # the examples of its top class (BANKING77: a 77th of the work)
        self.class_examples: list[Any] = []

    def _features(
        self, texts: list[str], fit: bool = False, languages: list[str] | None = None
    ) -> Any:
        langs = languages or [self.language] * len(texts)
        a = [analyse(t, lang) for t, lang in zip(texts, langs, strict=True)]
        s = [surface(t) for t in texts]
        if fit:
            w, c = self.words.fit_transform(a), self.chars.fit_transform(s)
            x = hstack([w, c * np.float32(self.char_weight)]).tocsr()
            for v in (self.words, self.chars):  # sklearn may keep the pruned terms: not needed
                if hasattr(v, "stop_words_"):
                    delattr(v, "stop_words_")
            return x
        w, c = self.words.transform(a), self.chars.transform(s)
        return hstack([w, c * np.float32(self.char_weight)]).tocsr()

    def _row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The features of one text as (column indices, values): what ``_features`` gives,
        without sklearn's per-call overhead (a parse is one short text)."""
        w_idx, w_val = _tfidf(self.words, analyse(text, self.language))
        c_idx, c_val = _tfidf(self.chars, surface(text))
        idx = np.concatenate([w_idx, c_idx + len(self.words.vocabulary_)])
        val = np.concatenate([w_val, c_val * self.char_weight])
        return idx, val

    def _similarities(self, cls: int, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        """``class_examples[cls][idx].T @ val``: the rows of the text's features, summed per
        example of the class without building a sparse matrix (scipy's per-call overhead is
        most of the time for one short text)."""
        ex = self.class_examples[cls]
        starts, ends = ex.indptr[idx], ex.indptr[idx + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(ex.shape[1], dtype=np.float64)
        # positions of every stored value of the chosen rows, in one array
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        pos = np.arange(total) + offsets
        weights = ex.data[pos] * np.repeat(val, lengths)
        return np.bincount(ex.indices[pos], weights=weights, minlength=ex.shape[1])

    def fit(
        self,
        texts: list[str],
        labels: list[str],
        weights: list[float] | None = None,
        languages: list[str] | None = None,
    ) -> IntentClassifier:
        """``languages``: each text's own language (its stems and cues), default this one's.
        A Polish classifier pooling German examples stems them as German and finds their
        German concepts (5-fold on the reference shop 86.5% -> 87.7%, nlu_data/ 77.2% ->
        80.7%; before, a German word went through the Polish stemmer and cue lists)."""
        x = self._features(texts, fit=True, languages=languages)
        svm = LinearSVC(C=self.c)
        svm.fit(x, labels, sample_weight=weights)
        self.classes = [str(c) for c in svm.classes_]
        coef = np.asarray(svm.coef_, dtype=np.float32)
        intercept = np.asarray(svm.intercept_, dtype=np.float32).ravel()
        if len(self.classes) == 2:  # binary: one score for classes[1]
            coef = np.vstack([-coef, coef])
            intercept = np.concatenate([-intercept, intercept])
        self.coef, self.intercept = coef, intercept
        index = {c: i for i, c in enumerate(self.classes)}
        self.examples = normalize(x).astype(np.float32).T.tocsr()
        self.example_class = np.array([index[str(y)] for y in labels], dtype=np.int32)
        by_column = self.examples.tocsc()
        self.class_examples = [
            by_column[:, np.flatnonzero(self.example_class == c)].tocsr()
            for c in range(len(self.classes))
        ]
        return self

    def scores(self, text: str) -> tuple[np.ndarray, float]:
        """A softmax of the SVM scores, and the cosine similarity of the text to the nearest
        training example of the top class."""
        idx, val = self._row(text)
        scores = self.coef[:, idx] @ val + self.intercept
        e = np.exp(self.temperature * (scores - scores.max()))
        p = np.asarray(e / e.sum(), dtype=np.float64)
        norm = float(np.sqrt(val @ val))
        nearest = 0.0
        if norm > 0:
            # cosine to each training example of the top class
            mine = self._similarities(int(np.argmax(p)), idx, val / norm)
            nearest = float(mine.max()) if mine.size else 0.0
        return p, nearest

    def damp(self, p: np.ndarray, nearest: float) -> np.ndarray:
        return np.asarray(p * min(1.0, nearest / self.similarity_floor) ** 0.5)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Per class: a softmax of the scores, scaled by the similarity of the text to the
        nearest training example of the top class (the scaled rows sum to at most 1)."""
        p = np.zeros((len(texts), len(self.classes)))
        for k, text in enumerate(texts):
            p[k] = self.damp(*self.scores(text))
        return p


class LanguageIdentifier:
    def __init__(self) -> None:
        self.vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
        self.clf = LogisticRegression(C=20.0, max_iter=3000)
        self.languages: list[str] = []

    def fit(self, texts: list[str], languages: list[str]) -> LanguageIdentifier:
        self.languages = sorted(set(languages))
        if len(self.languages) > 1:
            self.clf.fit(self.vec.fit_transform([surface(t) for t in texts]), languages)
        return self

    def predict(self, text: str) -> tuple[str, float]:
        if len(self.languages) == 1:
            return self.languages[0], 1.0
        # what ``clf.predict_proba(vec.transform([...]))`` gives, at a twentieth of the cost
        idx, val = _tfidf(self.vec, surface(text))
        coef, intercept = self.clf.coef_, self.clf.intercept_
        scores = coef[:, idx] @ val + intercept
        if len(scores) == 1:  # two languages: one logistic score for classes_[1]
            p1 = 1.0 / (1.0 + np.exp(-scores[0]))
            p = np.array([1.0 - p1, p1])
        else:
            e = np.exp(scores - scores.max())
            p = e / e.sum()
        i = int(np.argmax(p))
        return str(self.clf.classes_[i]), float(p[i])


class EntityExtractor:
    def __init__(self, data: TrainingData) -> None:
        self.regexes = [
            (name, re.compile(p, re.IGNORECASE)) for name, ps in data.regexes.items() for p in ps
        ]
        self.lookups: list[tuple[str, re.Pattern[str], str]] = []
        for name, values in data.lookups.items():
            for v in values:
                self.lookups.append(
                    (name, re.compile(r"(?<!\w)" + re.escape(fold(v)) + r"(?!\w)"), v)
                )
        self.synonyms = dict(data.synonyms)

    def extract(self, text: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name, rx in self.regexes:
            for m in rx.finditer(text):
                found.append(
                    self._entity(name, m.start(), m.end(), m.group(0), "RegexEntityExtractor")
                )
        folded = fold(text)
        # folding keeps lengths for the scripts we ship; offsets then map back to ``text``
        same_length = len(folded) == len(text)
        for name, rx, value in self.lookups:
            for m in rx.finditer(folded):
                start, end = (m.start(), m.end()) if same_length else (None, None)
                span = text[m.start() : m.end()] if same_length else value
                found.append(self._entity(name, start, end, span, "RegexEntityExtractor"))
        return found

    def _entity(
        self, name: str, start: int | None, end: int | None, span: str, extractor: str
    ) -> dict[str, Any]:
        value = self.synonyms.get(fold(span), span)
        e: dict[str, Any] = {
            "entity": name,
            "start": start,
            "end": end,
            "value": value,
            "extractor": extractor,
            "confidence_entity": 1.0,
        }
        if value != span:
            e["processors"] = ["EntitySynonymMapper"]
        return e


Pool = list[tuple[str, str, float, str]]  # (text, intent, weight, the text's language)
CV_FOLDS = 5
CV_LARGE = 3000  # more examples of a language than this: one 80/20 split instead of 5 folds
FAR_QUANTILE = 0.02  # out-of-fold examples of the training data closer to no topic than this
FAST_BAR = 0.97  # the n-gram model alone at least this sure (calibrated): no encoding
FUSION_WEIGHT = 0.5  # the semantic head's share of the fused probabilities, without calibration
FUSION_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # ... chosen among by cross-validation


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
            pools[lang] = _pool(lang, data, langs, responses)
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
            nlu.intents[lang], head = _fit_language(lang, pools[lang], table)
            if head is not None:
                nlu.semantic[lang] = head
        if encoder is not None and calibrate:
            nlu._calibrate(data, pools, table)
        nlu.langid.fit(texts, labels)
        nlu.languages = langs
        nlu.content_hash = content_hash
        nlu.trained_at = time.time()
        return nlu

    def _calibrate(
        self, data: dict[str, TrainingData], pools: dict[str, Pool], table: dict[str, np.ndarray]
    ) -> None:
        """Fit P(right) on out-of-fold parses (the answers of responses.yml stay in every
        fold, as the server trains)."""
        fast_x: list[list[float]] = []
        fused_x: list[list[float]] = []
        right_fast: list[bool] = []
        right_fused: list[bool] = []
        nearest_any: list[float] = []
        held_out: list[tuple[SemanticHead, np.ndarray, np.ndarray, int]] = []
        # Folds cut across languages: the k-th example of an intent is in the same fold in
        # every language (shops translate their examples), so that no held-out question has
        # its own translation in the training pool.
        fold_of: dict[tuple[str, str, str], int] = {}
        large = any(len(data[lang].examples) > CV_LARGE for lang in self.intents)
        for lang in self.intents:
            seen: Counter[str] = Counter()
            for x in data[lang].examples:
                k = seen[x.intent]
                seen[x.intent] += 1
                offset = int(hashlib.sha256(x.intent.encode()).hexdigest()[:8], 16)
                fold_of[(lang, x.text, x.intent)] = (k + offset) % CV_FOLDS
        for held_fold in range(1 if large else CV_FOLDS):
            for lang in self.intents:
                pool = [
                    item
                    for item in pools[lang]
                    if item[2] != 1.0 or fold_of.get((item[3], item[0], item[1])) != held_fold
                ]
                held = [
                    x for x in data[lang].examples if fold_of[(lang, x.text, x.intent)] == held_fold
                ]
                if len({p[1] for p in pool}) < 2 or not held:
                    continue
                clf, head = _fit_language(lang, pool, table)
                assert head is not None
                for example in held:
                    text, gold = example.text, example.intent
                    p_ng, _ = clf.scores(text)
                    fast_x.append(features(p_ng, []))
                    right_fast.append(clf.classes[int(np.argmax(p_ng))] == gold)
                    e = table.get(normalise(text))
                    if e is None:
                        e = self._encode(text)
                    gold_index = clf.classes.index(gold) if gold in clf.classes else -1
                    held_out.append((head, p_ng, e, gold_index))
        self.fusion_weight = _best_weight(held_out)
        for head, p_ng, e, gold_index in held_out:
            p, feats, near_all = self._fused(head, p_ng, e)
            fused_x.append(feats)
            right_fused.append(int(np.argmax(p)) == gold_index)
            nearest_any.append(near_all)
        self.fast_calibrator = Calibrator().fit(fast_x, right_fast)
        self.calibrator = Calibrator().fit(fused_x, right_fused)
        self.cv = [(self.calibrator(x), ok) for x, ok in zip(fused_x, right_fused, strict=True)]
        self.far_floor = float(np.quantile(nearest_any, FAR_QUANTILE)) if nearest_any else 0.0

    def _cached(self, text: str) -> bool:
        cached = getattr(self.encoder, "cached", None)
        return bool(callable(cached) and cached(text))

    def _encode(self, text: str) -> np.ndarray:
        enc = self.encoder
        if enc is None:
            raise RuntimeError("this model has no encoder")
        return np.asarray(enc.encode([text])[0], dtype=np.float32)

    def _fused(
        self, head: SemanticHead, p_ng: np.ndarray, e: np.ndarray
    ) -> tuple[np.ndarray, list[float], float]:
        """The fused probabilities of a text (n-gram ``p_ng``, embedding ``e``), what the
        calibrator sees of them, and the text's similarity to the nearest training example."""
        p_sem = head.proba(e)
        p = np.asarray(
            self.fusion_weight * p_sem + (1.0 - self.fusion_weight) * p_ng, dtype=np.float64
        )
        top = int(np.argmax(p))
        near_top, near_all = head.nearest(e, top)
        # the head's and the n-gram model's own belief in the fused top intent, and whether
        # they agree: CV share answered at 0.9 on the demo content 0.67 -> 0.70
        agree = float(int(np.argmax(p_sem)) == int(np.argmax(p_ng)))
        extra = [near_top, near_all, float(p_sem[top]), float(p_ng[top]), agree]
        return p, features(p, extra), near_all

    def detect_language(self, text: str, hint: str | None = None) -> tuple[str, float]:
        lang, conf = self.langid.predict(text)
        # a short or ambiguous text ("ok", "Klarna?") keeps the person's known language
        if hint in self.languages and lang != hint and (conf < 0.6 or len(text) < 12):
            return str(hint), conf
        return lang, conf

    def parse(
        self,
        text: str,
        language_hint: str | None = None,
        *,
        threshold: float | None = None,
        topic_thresholds: dict[str, float] | None = None,
    ) -> ParseResult:
        """With an encoder, ``confidence`` is the calibrated probability that the intent is
        right and ``threshold`` the precision to answer at; ``out_of_scope`` when the text is
        farther from every training example than nearly all of them are from each other."""
        result = self.parse_fast(
            text, language_hint, threshold=threshold, topic_thresholds=topic_thresholds
        )
        if result is None:
            result = self.parse_fast(
                text,
                language_hint,
                threshold=threshold,
                topic_thresholds=topic_thresholds,
                may_encode=True,
            )
        assert result is not None
        return result

    def parse_fast(
        self,
        text: str,
        language_hint: str | None = None,
        *,
        threshold: float | None = None,
        topic_thresholds: dict[str, float] | None = None,
        may_encode: bool = False,
    ) -> ParseResult | None:
        """:meth:`parse` without running the encoder (cached encodings are used): None when
        the n-gram model is unsure and the text's encoding is not cached (parse it in a
        thread then, with ``may_encode``)."""
        foreign = unserved_language(text, self.languages)
        if foreign is not None:
            return ParseResult(
                text=text,
                intent=FALLBACK,
                confidence=1.0,
                ranking=[],
                language=None,
                language_confidence=0.0,
                language_not_served=foreign,
            )
        lang, lconf = self.detect_language(text, language_hint)
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
                p, fused, near_all = self._fused(head, p_ng, e)
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
            language_confidence=lconf,
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


def _pool(
    lang: str,
    data: dict[str, TrainingData],
    langs: list[str],
    responses: dict[str, dict[str, list[str]]],
) -> Pool:
    d = data[lang]
    intents = set(d.intents)
    # Each language's classifier also learns from the other languages' examples of
    # the same intents: names, brands, numbers and cognates carry over (measured:
    # 73% -> 81% 5-fold accuracy on unseen paraphrases of the reference shop).
    pool: Pool = [(e.text, e.intent, 1.0, lang) for e in d.examples] + [
        (e.text, e.intent, 1.0, other)
        for other in langs
        if other != lang
        for e in data[other].examples
        if e.intent in intents
    ]
    # ... and from the answers (responses.yml), down-weighted: they bring the topic's
    # vocabulary (83.0% -> 83.5% 5-fold accuracy with the linear SVM)
    for other, answers in responses.items():
        w = OWN_RESPONSE_WEIGHT if other == lang else OTHER_RESPONSE_WEIGHT
        for intent, answer_texts in answers.items():
            if intent in intents:
                pool += [(t, intent, w, other) for a in answer_texts for t in answer_parts(a)]
    return pool


def _best_weight(held_out: list[tuple[SemanticHead, np.ndarray, np.ndarray, int]]) -> float:
    """The semantic head's share of the fused probabilities that parses the most out-of-fold
    examples right (ties: the one nearest 0.5): few examples per intent want more of the
    encoder, thousands more of the n-gram model."""
    if not held_out:
        return FUSION_WEIGHT
    sem = [head.proba(e) for head, _, e, _ in held_out]  # a fold may lack an intent: lists

    def right(w: float) -> int:
        return sum(
            int(np.argmax(w * s + (1.0 - w) * p_ng)) == gold
            for s, (_, p_ng, _, gold) in zip(sem, held_out, strict=True)
        )

    return max(FUSION_WEIGHTS, key=lambda w: (right(w), -abs(w - FUSION_WEIGHT)))


def _fit_language(
    lang: str, pool: Pool, table: dict[str, np.ndarray]
) -> tuple[IntentClassifier, SemanticHead | None]:
    texts, intents, weights, languages = map(list, zip(*pool, strict=True))
    clf = IntentClassifier(lang).fit(texts, intents, weights, languages)
    if not table:
        return clf, None
    emb = np.stack([table[normalise(t)] for t in texts])
    return clf, SemanticHead().fit(emb, intents, clf.classes, weights)


def load_responses(path: Path) -> dict[str, list[str]]:
    """``{intent: [answer text]}`` from a Rasa ``responses.yml``: ``utter_faq/x`` answers
    ``faq/x``, ``utter_greet`` answers ``greet``; an unreadable file gives nothing."""
    try:
        root = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    found = root.get("responses") if isinstance(root, dict) else None
    out: dict[str, list[str]] = {}
    for key, variants in (found or {}).items():
        if (
            not isinstance(key, str)
            or not key.startswith("utter_")
            or not isinstance(variants, list)
        ):
            continue
        texts = [
            v["text"] for v in variants if isinstance(v, dict) and isinstance(v.get("text"), str)
        ]
        if texts:
            out.setdefault(key.removeprefix("utter_"), []).extend(texts)
    return out


def find_responses(data: TrainingData) -> dict[str, list[str]]:
    """The answers in the ``responses.yml`` beside the training files of ``data``."""
    out: dict[str, list[str]] = {}
    for folder in sorted({Path(f).parent for f in data.files}):
        for intent, texts in load_responses(folder / RESPONSE_FILE).items():
            out.setdefault(intent, []).extend(texts)
    return out


def answer_parts(text: str) -> list[str]:
    """An answer and, when it has several, each of its sentences."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    return [text, *parts] if len(parts) > 1 else [text]


def content_hash(content: Path) -> str:
    """A hash of every training file (nlu and responses), to tell a stale model."""
    h = hashlib.sha256(f"format={FORMAT}".encode())
    # changed model code (the classifier, its text analysis, cue and concept lists) retrains,
    # whatever FORMAT says
    here = Path(__file__).parent
    for code in (
        "model.py",
        "text.py",
        "cues.py",
        "concepts.py",
        "semantic.py",
        "encoder.py",
        "foreign.py",
    ):
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
