"""The runtime as a whole: start, stop, and what it leaves behind."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

from bot.runtime import Runtime
from bot.settings import Settings
from bot.types import Inbound


async def test_a_stopped_runtime_frees_its_memory(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    # each runtime holds an NLU model of tens of MB: a process that starts runtimes again
    # (an embedding host, the test suite) must get that back after stop()
    rt = Runtime(make_settings(db_url), start_worker=False)
    await rt.start(migrate=False)
    await rt.engine.handle(Inbound(channel="rest", external_id="u1", text="hello"))
    await rt.stop()
    gone = weakref.ref(rt)
    model = weakref.ref(rt.nlu)
    del rt
    gc.collect()
    assert gone() is None and model() is None
