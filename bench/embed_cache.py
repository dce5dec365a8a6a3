"""Encodings kept on disk between benchmark runs (``.cache/bench-embeddings/``, not in git):
encoding MASSIVE's 11.5k texts x 5 languages costs minutes on two shared cores."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from bot.nlu.encoder import E5Encoder, normalise

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "bench-embeddings"


def embeddings(
    encoder: E5Encoder, label: str, texts: list[str], chunk: int = 256, verbose: bool = True
) -> np.ndarray:
    """Rows for ``texts`` (by normalised text), encoding and saving only what is missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(encoder.version.encode()).hexdigest()[:8]
    keys_file, rows_file = CACHE / f"{label}-{tag}.txt", CACHE / f"{label}-{tag}.npy"
    keys: list[str] = []
    rows = np.zeros((0, encoder.dim), dtype=np.float32)
    if keys_file.exists() and rows_file.exists():
        keys = keys_file.read_text(encoding="utf-8").split("\n") if keys_file.stat().st_size else []
        rows = np.load(rows_file)
        keys = keys[: len(rows)]
        rows = rows[: len(keys)]
    index = {k: i for i, k in enumerate(keys)}
    wanted = [normalise(t) for t in texts]
    missing = sorted({k for k in wanted if k not in index})
    t0 = time.perf_counter()
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        new = encoder.encode(part, use_cache=False)
        for k in part:
            index[k] = len(keys)
            keys.append(k)
        rows = np.vstack([rows, new])
        np.save(rows_file, rows)
        keys_file.write_text("\n".join(keys), encoding="utf-8")
        if verbose:
            done = start + len(part)
            rate = done / (time.perf_counter() - t0)
            print(f"  [{label}] encoded {done}/{len(missing)} ({rate:.0f} texts/s)", flush=True)
    return rows[[index[k] for k in wanted]]
