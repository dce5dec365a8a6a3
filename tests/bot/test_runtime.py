"""The runtime as a whole: start, stop, and what it leaves behind."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable

import pytest

from bot.runtime import Runtime, ServiceMissing
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


# --- the service registry ---------------------------------------------------------------------


def test_features_find_each_other_by_class(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    from bot.handoff.service import HandoffService
    from bot.lifecycle.service import LifecycleService

    rt = Runtime(make_settings(sqlite_url), start_worker=False)
    handoff = rt.service(HandoffService)
    assert isinstance(handoff, HandoffService) and rt.maybe_service(HandoffService) is handoff
    assert isinstance(rt.service(LifecycleService), LifecycleService)


def test_a_missing_service_is_a_clear_error_or_none(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    class Telescope:
        pass

    rt = Runtime(make_settings(sqlite_url), start_worker=False)
    assert rt.maybe_service(Telescope) is None
    with pytest.raises(ServiceMissing, match="no Telescope on this runtime"):
        rt.service(Telescope)
    scope = Telescope()
    rt.register(scope)
    assert rt.service(Telescope) is scope


def test_a_service_may_be_registered_as_its_base_class(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    class Base:
        pass

    class Special(Base):
        pass

    rt = Runtime(make_settings(sqlite_url), start_worker=False)
    special = Special()
    rt.register(special, as_type=Base)
    assert rt.service(Base) is special and rt.maybe_service(Special) is None


def test_a_disabled_feature_says_so(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    from bot.internal import service_of
    from bot.internal.config import load_internal_settings

    rt = Runtime(
        make_settings(sqlite_url, internal=load_internal_settings(enabled=False)),
        start_worker=False,
    )
    with pytest.raises(LookupError, match="CONCIERGE_INTERNAL_ENABLED"):
        service_of(rt)


def test_the_engine_tells_the_runtimes_signals(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    rt = Runtime(make_settings(sqlite_url), start_worker=False)
    assert rt.engine.signals is rt.signals
