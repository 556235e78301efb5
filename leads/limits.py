"""Bounds on the free-form JSON a lead carries (`attributes`) and an activity carries (`properties`).

One definition for every door: the API's serializers, the admin's form and the repair of values
stored before the limits existed (migration 0013) all ask `json_object_problem`. Iterative, so a
hostile value nested a thousand levels deep cannot exhaust the stack while it is being checked.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 8  # levels of objects and lists inside `attributes` or an event's `properties`
MAX_JSON_BYTES = 64 * 1024  # their size as JSON: custom attributes, not documents
MAX_JSON_KEYS = 100  # keys at the top level


def json_depth(value: Any, *, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How many levels of objects and lists `value` has, counting no further than stop_after + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > stop_after:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _unstorable_at(value: Any) -> str | None:
    """The path of the first string PostgreSQL's jsonb cannot store (NUL, a lone surrogate), or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return path or "value"
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, path or "value"))
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


def json_object_problem(value: Any) -> str | None:
    """What is wrong with `value` as custom attributes or event properties, in words; None if fine."""
    if not isinstance(value, dict):
        return "Must be a JSON object."
    if len(value) > MAX_JSON_KEYS:
        return f"At most {MAX_JSON_KEYS} keys."
    if json_depth(value) > MAX_JSON_DEPTH:
        return f"Nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and lists."
    if len(json.dumps(value, ensure_ascii=False)) > MAX_JSON_BYTES:
        return f"Too large: at most {MAX_JSON_BYTES // 1024} KB as JSON."
    if (path := _unstorable_at(value)) is not None:
        return f"{path} contains characters that cannot be stored."
    return None
