"""Fixtures of the drift tests (the apply tests' Windows-like lab)."""

from apply.labenv import env

__all__ = ["env"]
