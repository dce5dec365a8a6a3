"""What the core settings and the features' sections share: the error of invalid settings,
loading a section from the environment, comma-separated lists, and checking a value by parsing
it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, NoDecode

S = TypeVar("S", bound=BaseSettings)
T = TypeVar("T")


class SettingsError(Exception):
    """Settings are invalid: the message is one line per problem, fit for a terminal."""


def problems(error: ValidationError, prefix: str) -> SettingsError:
    """One line per problem, naming the environment variable (``prefix`` + the field)."""
    lines = [
        f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        for err in error.errors()
    ]
    return SettingsError("invalid settings:\n  " + "\n  ".join(lines))


def load_section(model: type[S], **overrides: Any) -> S:
    """A settings section from the environment (and ``overrides``); errors name the variable."""
    try:
        return model(**overrides)
    except ValidationError as e:
        raise problems(e, str(model.model_config.get("env_prefix", ""))) from None


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


Csv = Annotated[list[T], NoDecode, BeforeValidator(_split_csv)]
"""A list that the environment gives comma-separated (``a, b,c``) or as a list in code."""


def parsed_by(parse: Callable[[Any], object]) -> AfterValidator:
    """Keep the value as written, once ``parse`` accepts it (its ``ValueError`` is the error)."""

    def check(value: T) -> T:
        if value is not None:
            parse(value)
        return value

    return AfterValidator(check)
