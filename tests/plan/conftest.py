"""Fixtures of the plan tests: the lab of the apply tests (apply.labenv), for plans made through
the real CLI against a Windows-like endpoint."""

from apply.labenv import env

__all__ = ["env"]
