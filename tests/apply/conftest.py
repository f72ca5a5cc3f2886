"""Fixtures of the apply tests (defined in labenv)."""

from apply.labenv import env

__all__ = ["env"]
