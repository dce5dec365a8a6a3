"""The error of invalid settings, shared by the core settings and the features' sections."""

from __future__ import annotations

from pydantic import ValidationError


class SettingsError(Exception):
    """Settings are invalid: the message is one line per problem, fit for a terminal."""


def problems(error: ValidationError, prefix: str) -> SettingsError:
    """One line per problem, naming the environment variable (``prefix`` + the field)."""
    lines = [
        f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
        for err in error.errors()
    ]
    return SettingsError("invalid settings:\n  " + "\n  ".join(lines))
