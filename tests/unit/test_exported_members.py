"""Public modules re-export exactly their ``__all__``, sorted, each with a docstring."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC_MODULES = ["onex_actors", "onex_actors.core", "onex_actors.registry", "onex_actors.cli"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n))
    public = {
        n
        for n in vars(module)
        if not n.startswith("_") and not inspect.ismodule(getattr(module, n))
    }
    assert public <= set(exported) | {"annotations"}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_class_and_function_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    for member in module.__all__:
        obj = getattr(module, member)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name}.{member} has no docstring"
