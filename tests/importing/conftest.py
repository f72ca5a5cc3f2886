"""Fixtures of the import tests (defined in labimport)."""

from importing.labimport import lab

__all__ = ["lab"]
