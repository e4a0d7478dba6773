"""`handlers/` holds exactly the modules the contract names, and each function it names."""

import importlib
from pathlib import Path

from service.patches.signatures import snake_case
from tests.support.api import ROOT
from tests.support.contract import SPEC

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def named_by_the_contract() -> dict[str, set[str]]:
    """module -> the function names the contract gives it."""
    named: dict[str, set[str]] = {}
    for item in SPEC["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                module = operation["x-openapi-router-controller"]
                named.setdefault(module, set()).add(snake_case(operation["operationId"]))
    for scheme in SPEC["components"]["securitySchemes"].values():
        module, _, function = scheme["x-bearerInfoFunc"].rpartition(".")
        named.setdefault(module, set()).add(function)
    return named


def test_every_module_in_handlers_is_named_by_the_contract() -> None:
    on_disk = {
        f"handlers.{path.stem}"
        for path in Path(ROOT / "handlers").glob("*.py")
        if path.name != "__init__.py"
    }

    assert on_disk == set(named_by_the_contract())


def test_every_function_the_contract_names_exists() -> None:
    for module_name, functions in named_by_the_contract().items():
        module = importlib.import_module(module_name)
        for function in functions:
            assert callable(getattr(module, function, None)), f"{module_name}.{function}"
