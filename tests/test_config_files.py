"""The option YAML files and the schemas agree: each registry option has its file and each file is an
option (adding an activation is one engine class and one YAML), and a file says only what differs
from its schema's defaults (each default is declared once, in the schema or the engine's signature)."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from runner.config.options import option_schemas, schema_name

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = sorted({group for group, _ in option_schemas()})


def _default(schema, key):
    field = {f.name: f for f in dataclasses.fields(schema)}[key]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@pytest.mark.parametrize("group", GROUPS)
def test_each_option_has_its_file_and_each_file_is_an_option(group):
    options = {option for g, option in option_schemas() if g == group}
    files = {path.stem for path in (CONF / group).glob("*.yaml")}
    assert files == options, f"files without an option: {files - options}; options without a file: {options - files}"


@pytest.mark.parametrize("group,option", sorted(option_schemas()))
def test_an_option_file_extends_its_schema_and_says_only_what_differs(group, option):
    schema = option_schemas()[group, option]
    data = yaml.safe_load((CONF / group / f"{option}.yaml").read_text()) or {}
    assert data.pop("defaults") == [f"/{schema_name(group, option)}@_here_"]
    restated = [key for key, value in data.items() if _default(schema, key) == value]
    assert not restated, f"{group}/{option}.yaml restates the schema's defaults of {restated}"

