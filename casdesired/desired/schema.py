"""Checking a document against its JSON Schema and saying what is wrong in plain words.

The schemas (``schemas/*.schema.json``, draft 2020-12) ship inside the package and are the ones
editors use through the ``yaml-language-server`` comment. jsonschema's own messages quote the
offending value — which may be a secret typed where an environment variable name belongs — so
every message here is built from the schema and the key names, and quotes a value only where it
cannot be a credential.

YAML has numbers JSON does not: ``.nan``, ``.inf`` and ``-.inf``. JSON Schema cannot name them,
and NaN slips through every bound (``nan > 100`` and ``nan < 0`` are both false), so the
validator counts only finite values as "number" or "integer": those three are wrong-type errors.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, TypeChecker, validators
from jsonschema.exceptions import ValidationError

from casdesired.desired.yamlsource import Document, YamlPath
from casdesired.findings import Finding, Severity

KINDS = ("organisation", "site")
"""The file kinds, each with ``schemas/<kind>.schema.json``."""

_CREDENTIALS: YamlPath = ("connection", "credentials")


def schema_text(kind: str) -> str:
    """The JSON Schema for a file kind as the package ships it (``schemas/<kind>.schema.json``
    of the repository)."""
    return (resources.files("casdesired") / "schemas" / f"{kind}.schema.json").read_text("utf-8")


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for a file kind, loaded from the package."""
    loaded: dict[str, Any] = json.loads(schema_text(kind))
    return loaded


def _finite(draft_type: str) -> Callable[[TypeChecker, object], bool]:
    """The draft's check for ``draft_type``, refusing NaN and the infinities."""

    def check(checker: TypeChecker, instance: object) -> bool:
        if isinstance(instance, float) and not math.isfinite(instance):
            return False
        return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, draft_type))

    return check


_FiniteValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"number": _finite("number"), "integer": _finite("integer")}
    ),
)


@cache
def _validator(kind: str) -> Any:
    return _FiniteValidator(schema(kind))


def check(document: Document, kind: str) -> list[Finding]:
    """Every schema violation in ``document``, located at the key or value at fault."""
    found: list[Finding] = []
    for error in _validator(kind).iter_errors(document.data):
        found.extend(_explain(error, document))
    return found


def dotted(where: YamlPath) -> str:
    """``("array", "load_balancer", "vip")`` → ``array.load_balancer.vip``; lists as ``[i]``."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the top level"


def _kind_of(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float) and math.isnan(value):
        return ".nan (not-a-number)"
    if isinstance(value, float) and math.isinf(value):
        return f"{'-' if value < 0 else ''}.inf (infinity)"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}


# dns.management holds a secret's variable name too (secret_env), and a `secret:` typed there.
_DNS_SECRET_SLOTS: frozenset[YamlPath] = frozenset(
    {("dns", "management"), ("dns", "management", "secret_env")}
)


def _secret_slot(where: YamlPath) -> bool:
    return where[: len(_CREDENTIALS)] == _CREDENTIALS or where in _DNS_SECRET_SLOTS


def _explain(error: ValidationError, document: Document) -> list[Finding]:
    where: YamlPath = tuple(error.absolute_path)
    name = dotted(where)
    validator = error.validator
    schema_here: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}

    def at(
        message: str, place: YamlPath = where, *, key: bool = False, rule: str = "schema"
    ) -> Finding:
        return Finding.at(document.location(place, key=key), Severity.ERROR, message, rule)

    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema_here.get("properties", {}))
        found = []
        for extra in sorted(k for k in error.instance if k not in known):
            found.append(
                at(
                    _unknown_key(extra, known, where),
                    (*where, extra),
                    key=True,
                    rule="unknown-key",
                )
            )
        return found
    if validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        keys = ", ".join(f"'{k}'" for k in missing)
        return [at(f"{name}: missing required key {keys}", rule="missing-key")]
    if validator == "type":
        wanted = error.validator_value
        words = (
            " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
            if isinstance(wanted, list)
            else _TYPE_WORDS.get(wanted, str(wanted))
        )
        return [at(f"{name} must be {words}, not {_kind_of(error.instance)}", rule="wrong-type")]
    if validator == "const" and where == ("casdesired",):
        return [
            at(
                "unsupported format version; this casdesired reads 'casdesired: 1'",
                rule="format-version",
            )
        ]
    if validator in ("enum", "const"):
        allowed = error.validator_value if validator == "enum" else [error.validator_value]
        choices = ", ".join(str(a) for a in allowed)
        got = "" if _secret_slot(where) else f" (got {_short(error.instance)})"
        return [at(f"{name} must be one of: {choices}{got}", rule="bad-value")]
    if validator == "pattern":
        if _secret_slot(where):
            return [at(_secret_message(name), rule="secret-inline")]
        return [
            at(
                f"{name} {_short(error.instance)} is not allowed: {_pattern_words(where)}",
                rule="bad-value",
            )
        ]
    if validator == "minLength":
        return [at(f"{name} must not be empty", rule="bad-value")]
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        relation = {
            "minimum": "at least",
            "exclusiveMinimum": "greater than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[str(validator)]
        return [at(f"{name} must be {relation} {error.validator_value}", rule="bad-value")]
    return [at(f"{name}: invalid value (schema rule '{validator}')")]


def _unknown_key(extra: str, known: list[str], where: YamlPath) -> str:
    place = dotted(where)
    message = f"unknown key '{extra}' in {place}"
    close = difflib.get_close_matches(extra, known, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean '{close[0]}'?"
    elif known:
        message += f" (allowed: {', '.join(known)})"
    if _secret_slot(where):
        # A `password:` key holds a secret: name the key, never its value, and say what to do.
        message += (" " if message.endswith("?") else ". ") + (
            "Credentials are the NAMES of environment variables (e.g. password_env: "
            "CASDESIRED_PASSWORD), never the secrets — the value was not printed"
        )
    return message


def _secret_message(name: str) -> str:
    return (
        f"{name} must be the NAME of an environment variable (letters, digits, underscore), "
        "and this value is not one — if it is a secret, remove it from the file and put it "
        "in an environment variable; the value was not printed"
    )


def _pattern_words(where: YamlPath) -> str:
    if where == ("name",):
        return "use letters, digits, '.', '_' or '-' (at most 64)"
    return "wrong form"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
