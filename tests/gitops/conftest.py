"""Fixtures of the example pipelines' tests (the lab: apply.labenv)."""

from apply.labenv import env

__all__ = ["env"]
