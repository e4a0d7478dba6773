"""The contract, found where it is installed: beside the code in a checkout, inside the wheel
otherwise (the wheel ships `openapi/` as package data), never by a path relative to a file."""

from importlib.resources import files
from typing import Any

import yaml

CONTRACT_FILE = "tasks.yaml"


def contract_text() -> str:
    return (files("openapi") / CONTRACT_FILE).read_text(encoding="utf-8")


def load_contract() -> tuple[dict[str, Any], str]:
    """The contract parsed, and its text as written."""
    text = contract_text()
    return yaml.safe_load(text), text
