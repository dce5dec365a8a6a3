"""FAQ gaps at ``/admin/gaps``: the clustered questions the assistant could not answer; from a
cluster, an example for an intent (or a new topic with its answer) is written to the content
files, validated, and the model retrained in the background (:mod:`bot.nlu.gaploop`); the page
shows the accuracy on the shop's tests before and after, and how many of the cluster's
questions are now answered.

The new model serves in this process as soon as it is trained; other processes of the same
deployment train it at their next start (the content changed). Every POST carries the admin
session's CSRF token.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.nlu import gaploop
from bot.responses import parse_responses
from bot.runtime import Runtime
from channels.web.admin.console import Console, Session, owner_only, signed_in

log = logging.getLogger(__name__)
MAX_QUESTIONS = 50


@dataclass
class Job:
    state: str = "idle"  # idle | training | done | failed
    change: str = ""
    outcome: gaploop.Outcome | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "change": self.change,
            "outcome": self.outcome.as_dict() if self.outcome else None,
            "error": self.error,
        }


def _embedded(nlu: Any) -> Any:
    """The embedded backend serving (itself, or a Rasa backend's fallback), else None."""
    from bot.nlu.service import EmbeddedBackend, RasaBackend

    if isinstance(nlu, RasaBackend):
        return nlu.fallback
    return nlu if isinstance(nlu, EmbeddedBackend) else None


class Gaps(Console):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.job = Job()
        self._task: asyncio.Task[None] | None = None
        runtime.on_stop(self._stop)

    async def _stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def content(self) -> Path:
        return self.runtime.settings.content_dir

    @signed_in
    async def view(self, request: Request, sess: Session) -> Response:
        return await self._render(sess)

    async def _render(
        self,
        sess: Session,
        *,
        error: str | None = None,
        status: int = 200,
        form: dict[str, str] | None = None,
    ) -> Response:
        async with self.runtime.db.session() as s:
            clusters = await gaploop.recent_gaps(s)
        intents: dict[str, list[str]] = {}
        for c in clusters:
            if c.language not in intents:
                try:
                    intents[c.language] = gaploop.intents(self.content, c.language)
                except Exception:  # content that does not load: validate says why
                    intents[c.language] = []
        return self.page(
            "gaps.html",
            sess,
            status,
            clusters=clusters,
            intents=intents,
            job=self.job,
            retrainable=_embedded(self.runtime.nlu) is not None,
            error=error,
            form=form or {},
        )

    @signed_in
    async def status(self, request: Request, sess: Session) -> Response:
        return JSONResponse(self.job.as_dict())

    @owner_only  # changing what the assistant answers is the owner's
    async def add(self, request: Request, sess: Session) -> Response:
        form = await request.form()
        fields = {
            k: str(form.get(k) or "").strip()
            for k in ("lang", "mode", "intent", "topic", "text", "answer")
        }
        questions = [str(q) for q in form.getlist("q")][:MAX_QUESTIONS]
        backend = _embedded(self.runtime.nlu)
        if backend is None:
            return await self._render(
                sess,
                error="The NLU here is not the embedded model: nothing to retrain.",
                status=409,
            )
        if self.job.state == "training":
            return await self._render(
                sess, error="A retraining is running; try again when it is done.", status=409
            )
        lang, mode = fields["lang"], fields["mode"]
        if lang not in self.runtime.settings.languages:
            return await self._render(
                sess, error=f"Language {lang[:16]!r} is not served here.", status=400, form=fields
            )
        try:
            if mode == "topic":
                intent = f"faq/{fields['topic']}"
                edit = await asyncio.to_thread(
                    gaploop.add_topic,
                    self.content,
                    lang,
                    fields["topic"],
                    fields["text"],
                    fields["answer"],
                )
            elif mode == "example":
                intent = fields["intent"]
                edit = await asyncio.to_thread(
                    gaploop.add_example, self.content, lang, intent, fields["text"]
                )
            else:
                return await self._render(
                    sess, error="Choose an intent or a new topic.", status=400, form=fields
                )
        except gaploop.ContentEditError as e:
            return await self._render(sess, error=str(e), status=400, form=fields)
        if fields["text"] not in questions:
            questions.append(fields["text"])
        log.info("FAQ gaps: %s by %s", edit.description, sess.get("name"))
        self.job = Job(state="training", change=f"{edit.description} by {sess.get('name', '?')}")
        answer = fields["answer"] if mode == "topic" else None
        self._task = asyncio.get_running_loop().create_task(
            self._retrain(backend, lang, intent, questions, answer)
        )
        return RedirectResponse("/admin/gaps#status", status_code=303)

    async def _retrain(
        self, backend: Any, lang: str, intent: str, questions: list[str], answer: str | None
    ) -> None:
        st = self.runtime.settings
        try:
            model, outcome = await asyncio.to_thread(
                gaploop.retrain,
                self.content,
                st.resolved_model_dir,
                languages=st.languages,
                encoder=st.nlu_encoder,
                old=backend.model,
                lang=lang,
                intent=intent,
                questions=questions,
                threshold=backend.threshold,
                topic_thresholds=backend.topic_thresholds,
                change=self.job.change,
            )
        except Exception as e:
            log.exception("FAQ gaps: retraining failed")
            self.job.state, self.job.error = "failed", f"{type(e).__name__}: {e}"
            return
        if answer is not None:  # the new topic's answer, for the turns from now on
            self.runtime.responses.add_defaults(
                {lang: parse_responses({f"utter_{intent}": [{"text": answer}]})}
            )
        backend.model = model
        self.job.outcome, self.job.state = outcome, "done"


def routes(runtime: Runtime) -> list[BaseRoute]:
    g = Gaps(runtime)
    return [
        Route("/admin/gaps", g.view),
        Route("/admin/gaps/status.json", g.status),
        Route("/admin/gaps/add", g.add, methods=["POST"]),
    ]
