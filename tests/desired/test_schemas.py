"""The JSON Schemas themselves: valid draft 2020-12, shipped in the package, met by the example."""

from __future__ import annotations

import json

import pytest
import yaml
from jsonschema import Draft202012Validator

from casdesired.desired import schema
from casdesired.desired.loader import find_files
from desired.helpers import EXAMPLE, ROOT


@pytest.mark.parametrize("kind", schema.KINDS)
def test_each_schema_is_a_valid_2020_12_schema(kind: str) -> None:
    document = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("kind", schema.KINDS)
def test_the_package_loads_the_same_schema_as_the_repository_holds(kind: str) -> None:
    on_disk = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text("utf-8"))
    assert schema.schema(kind) == on_disk


def test_every_example_file_validates_against_the_schema_its_comment_names() -> None:
    files = find_files(EXAMPLE)
    assert len(files) == 4
    for path in files:
        first = path.read_text("utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        schema_path = (path.parent / first.split("$schema=", 1)[1]).resolve()
        data = yaml.safe_load(path.read_text("utf-8"))
        validator = Draft202012Validator(json.loads(schema_path.read_text("utf-8")))
        assert list(validator.iter_errors(data)) == [], path
        assert schema_path.name == f"{data['kind']}.schema.json"


def test_the_schema_refuses_what_validate_refuses() -> None:
    # An editor using only the schema sees the same unknown key and the same bad enum.
    validator = Draft202012Validator(schema.schema("site"))
    broken = {"casdesired": 1, "kind": "site", "site": "HQ", "arrays": {}}
    assert [e.validator for e in validator.iter_errors(broken)] == ["additionalProperties"]
    lb = {"type": "f5", "vip": "10.0.0.1"}
    broken = {
        "casdesired": 1,
        "kind": "site",
        "site": "HQ",
        "array": {"fqdn": "a.b", "load_balancer": lb},
    }
    assert [e.validator for e in validator.iter_errors(broken)] == ["enum"]
