"""Train the NLU model before a live server starts, outside its start deadline.

The first server of a session with given content trains the model (tens of seconds on a busy
2-core machine); later ones load it. Training here, once per model folder and process, keeps
that time out of ``LiveServer.start``'s deadline.
"""

from __future__ import annotations

from pathlib import Path

from bot.runtime import build_nlu
from bot.settings import Settings

_trained: set[Path] = set()


def warm_nlu(settings: Settings) -> Settings:
    folder = settings.resolved_model_dir
    if folder not in _trained:
        build_nlu(settings)
        _trained.add(folder)
    return settings
