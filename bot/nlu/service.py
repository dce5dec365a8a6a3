"""NLU backends behind one interface: ``await backend.parse(text, hint) -> Rasa dict``.

- :class:`EmbeddedBackend`: the model of :mod:`bot.nlu.model`, trained from the content at
  start when missing or stale (content hash), kept in the model folder.
- :class:`RasaBackend`: a running Rasa server's ``POST /model/parse``; when it is down, slow or
  answers nonsense, the embedded model answers and the event is logged.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx

from bot.nlu.data import load_content
from bot.nlu.encoder import NONE, load_encoder
from bot.nlu.model import MODEL_FILE, EmbeddedNLU, ModelMismatchError, content_hash
from bot.settings import Settings

log = logging.getLogger(__name__)


def load_or_train(
    content: Path, model_dir: Path, languages: list[str] | None = None, encoder: str = NONE
) -> EmbeddedNLU:
    """The model for ``content``: loaded from ``model_dir`` when it is current (same content,
    languages, encoder and encoder version), else trained and saved there."""
    digest = content_hash(content)
    if (model_dir / MODEL_FILE).exists():
        try:
            model = EmbeddedNLU.load(model_dir, encoder=encoder)
            if model.content_hash == digest and (
                languages is None or set(model.languages) == set(languages) & set(model.languages)
            ):
                return model
            log.info("NLU model in %s is stale: retraining", model_dir)
        except ModelMismatchError as e:  # another encoder or version: retrain
            log.warning("%s", e)
        except Exception as e:  # unreadable or old format: retrain
            log.warning("cannot load NLU model from %s (%s): retraining", model_dir, e)
    data = load_content(content)
    model = EmbeddedNLU.train(
        data, languages=languages, content_hash=digest, encoder=load_encoder(encoder)
    )
    try:
        model.save(model_dir)
    except OSError as e:
        log.warning("cannot save the NLU model to %s: %s", model_dir, e)
    return model


class EmbeddedBackend:
    """The embedded model. A text the n-gram model is unsure of is parsed in a thread (the
    encoder runs there, never on the event loop); every other one right here (~1 ms)."""

    def __init__(self, model: EmbeddedNLU, threshold: float, topic_thresholds: dict[str, float]):
        self.model = model
        self.threshold = threshold
        self.topic_thresholds = topic_thresholds

    def _parse(self, text: str, language_hint: str | None) -> dict[str, Any]:
        result = self.model.parse(
            text,
            language_hint,
            threshold=self.threshold,
            topic_thresholds=self.topic_thresholds,
        )
        return result.to_rasa()

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        result = self.model.parse_fast(
            text, language_hint, threshold=self.threshold, topic_thresholds=self.topic_thresholds
        )
        if result is None:  # the encoder must run: in a thread
            return await asyncio.to_thread(self._parse, text, language_hint)
        return result.to_rasa()


class RasaBackend:
    """A Rasa server over HTTP, with the embedded model as the fallback."""

    def __init__(
        self,
        url: str,
        fallback: EmbeddedBackend,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/model/parse"
        self.fallback = fallback
        self.params = {"token": token} if token else {}
        self.client = httpx.AsyncClient(timeout=timeout, transport=transport)
        self.failures = 0

    async def parse(self, text: str, language_hint: str | None = None) -> dict[str, Any]:
        try:
            r = await self.client.post(self.url, json={"text": text}, params=self.params)
            r.raise_for_status()
            data = r.json()
            if not isinstance(data, dict) or not isinstance(data.get("intent"), dict):
                raise ValueError("answer has no 'intent'")
            name = data["intent"].get("name")
            if not isinstance(name, str):
                raise ValueError("answer's intent has no name")
            data.setdefault("entities", [])
            data.setdefault("intent_ranking", [])
            data.setdefault("text", text)
            if not data.get("language"):
                data["language"] = self.fallback.model.detect_language(text, language_hint)
            return data
        except (httpx.HTTPError, ValueError) as e:
            self.failures += 1
            log.warning("Rasa server %s failed (%s): the embedded NLU answers", self.url, e)
            return await self.fallback.parse(text, language_hint)

    async def aclose(self) -> None:
        await self.client.aclose()


def build_backend(settings: Settings) -> EmbeddedBackend | RasaBackend:
    model = load_or_train(
        settings.nlu_data_dir if settings.nlu_data_dir.is_dir() else settings.content_dir,
        settings.resolved_model_dir,
        settings.languages,
        settings.nlu_encoder,
    )
    # a calibrated model answers at the target precision; the n-gram model alone at its
    # (uncalibrated) threshold
    threshold = (
        settings.nlu_target_precision if model.calibrator is not None else settings.nlu_threshold
    )
    embedded = EmbeddedBackend(model, threshold, settings.nlu_topic_thresholds)
    if settings.nlu_backend == "rasa":
        if not settings.rasa_url:
            raise ValueError("CONCIERGE_NLU_BACKEND=rasa needs CONCIERGE_RASA_URL")
        return RasaBackend(
            settings.rasa_url, embedded, token=settings.rasa_token, timeout=settings.rasa_timeout
        )
    return embedded
