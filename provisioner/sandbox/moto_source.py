"""What moto's own source defines: how the sandbox's patches check that moto still has what they patch."""

from __future__ import annotations

import ast
import inspect
from typing import Any


def class_members(module: Any, class_name: str) -> tuple[set[str], set[str]]:
    """Methods and `self.x = ...` attributes a class defines in moto's pristine source (patches don't show)."""
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
            attributes = {
                target.attr
                for item in ast.walk(node)
                if isinstance(item, ast.Assign | ast.AnnAssign)
                for target in (item.targets if isinstance(item, ast.Assign) else [item.target])
                if isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            }
            return methods, attributes
    return set(), set()
