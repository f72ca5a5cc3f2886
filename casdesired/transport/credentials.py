"""Credentials come from environment variables named in the organisation file, never from YAML.

Errors name the VARIABLE and what it should hold, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from casdesired.errors import ConfigError


def required(environ: Mapping[str, str], variable: str | None, setting: str, holds: str) -> str:
    """The value of a required environment variable.

    ``setting`` is the organisation file key that names the variable (for the message when it
    is not named at all); ``holds`` says what the variable must contain.
    """
    if not variable:
        raise ConfigError(
            f"connection.credentials.{setting} is not set: name the environment variable "
            f"that holds the {holds}"
        )
    value = environ.get(variable)
    if not value:
        raise ConfigError(
            f"environment variable {variable} is not set or empty: it must hold the {holds} "
            f"(named by connection.credentials.{setting})"
        )
    return value


def optional(environ: Mapping[str, str], variable: str | None) -> str | None:
    """The value of an optional environment variable (None when unnamed, unset or empty)."""
    if not variable:
        return None
    return environ.get(variable) or None


def existing_file(
    environ: Mapping[str, str], variable: str | None, setting: str, holds: str
) -> str:
    """A path from an environment variable that must name an existing file."""
    path = required(environ, variable, setting, holds)
    if not Path(path).is_file():
        # The path is not a secret (the key inside the file is); naming it helps the user.
        raise ConfigError(f"environment variable {variable} names {path}, which is not a file")
    return path
