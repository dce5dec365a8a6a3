"""Imports every module that defines tables, so ``Base.metadata`` knows them all."""

from bot.storage import models  # noqa: F401

# Feature modules add one import line each below.
from bot.internal import models as _internal  # noqa: F401
