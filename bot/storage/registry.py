"""Imports every module that defines tables, so ``Base.metadata`` knows them all."""

# Feature modules add one import line each below.
from bot import staff as _staff  # noqa: F401
from bot import stats as _stats  # noqa: F401
from bot.handoff import models as _handoff  # noqa: F401
from bot.internal import models as _internal  # noqa: F401
from bot.lifecycle import models as _lifecycle  # noqa: F401
from bot.prompts import models as _prompts  # noqa: F401
from bot.storage import models  # noqa: F401
from bot.storage import seen as _seen  # noqa: F401
