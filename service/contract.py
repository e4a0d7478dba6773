"""The contract, found where it is installed: beside the code in a checkout, inside the wheel
otherwise (the wheel ships `openapi/` as package data), never by a path relative to a file."""

import copy
from importlib.resources import files
from typing import Any

import yaml

CONTRACT_FILE = "tasks.yaml"
SCHEMA_NAME = "x-schema-name"
"""Each named schema's own name, in the copy Connexion gets: a validation error then says
"not a field of TaskCreate" although Connexion has inlined every `$ref`."""


def contract_text() -> str:
    return (files("openapi") / CONTRACT_FILE).read_text(encoding="utf-8")


def load_contract() -> tuple[dict[str, Any], str]:
    """The contract parsed, and its text as written."""
    text = contract_text()
    return yaml.safe_load(text), text


def with_schema_names(contract: dict[str, Any]) -> dict[str, Any]:
    """A copy of the contract whose named schemas carry their name (`x-schema-name`)."""
    named = copy.deepcopy(contract)
    for name, schema in named.get("components", {}).get("schemas", {}).items():
        schema[SCHEMA_NAME] = name
    return named
