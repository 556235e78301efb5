"""What changed between two states of a scoring model, in words, for the audit trail: "MQL threshold
50 → 60", "Fit rule “CTO” points 10 → 15", "Behaviour rule added: Demo request, +30 points".

A state is a snapshot (plain data) taken before an edit and after it, or of two versions (the
active one and the one that replaces it). Rules are matched by kind and name (their label, or the
condition in words), since a cloned version's rules have new ids."""

from __future__ import annotations

from typing import Any

from leads.conditions import describe

from .models import ScoringModel, points_text

SETTINGS = {
    "name": "Name",
    "mql_threshold": "MQL threshold",
    "min_grade": "Minimum grade",
    "half_life_days": "Half-life (days)",
    "grade_a_min": "Grade A from",
    "grade_b_min": "Grade B from",
    "grade_c_min": "Grade C from",
    "notes": "Notes",
}
KINDS = (("fit_rules", "Fit rule"), ("behavior_rules", "Behaviour rule"), ("exclusion_rules", "Exclusion rule"))

Snapshot = dict[str, Any]


def _shown(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return points_text(float(value))
    if value in (None, ""):
        return "—"
    return str(value)


def _rule_state(kind: str, rule) -> dict[str, str]:
    if kind == "behavior_rules":
        state = {"activity": rule.describe(), "points": _shown(rule.points)}
        state["max points"] = _shown(rule.max_points)
        state["at most (times)"] = _shown(rule.max_occurrences)
        return state
    state = {"condition": describe(rule)}
    state["points"] = _shown(rule.points)
    if kind == "exclusion_rules":
        state["category"] = rule.get_category_display()
        state["action"] = rule.get_action_display()
    return state


def snapshot(model: ScoringModel) -> Snapshot:
    """A model's settings and rules as plain text values, from the database."""
    rules: dict[str, dict[str, dict[str, str]]] = {}
    for kind, _ in KINDS:
        named: dict[str, dict[str, str]] = {}
        for rule in getattr(model, kind).all().order_by("pk") if model.pk else ():
            name, n = str(rule), 2
            while name in named:  # two rules of one name: tell them apart by their order
                name, n = f"{rule} ({n})", n + 1
            named[name] = _rule_state(kind, rule)
        rules[kind] = named
    return {"settings": {field: _shown(getattr(model, field)) for field in SETTINGS}, "rules": rules}


def _points(state: dict[str, str]) -> str:
    points = state.get("points", "0")
    return points if points.startswith("-") else f"+{points}"


def diff(old: Snapshot, new: Snapshot) -> list[str]:
    """The changes from `old` to `new`, one sentence each; empty when nothing changed."""
    lines = []
    for field, label in SETTINGS.items():
        before, after = old["settings"].get(field), new["settings"].get(field)
        if before != after:
            lines.append(f"{label} changed" if field == "notes" else f"{label} {before} → {after}")
    for kind, word in KINDS:
        before, after = old["rules"].get(kind, {}), new["rules"].get(kind, {})
        for name in sorted(after.keys() - before.keys()):
            lines.append(f"{word} added: {name}, {_points(after[name])} points")
        for name in sorted(before.keys() - after.keys()):
            lines.append(f"{word} removed: {name}")
        for name in sorted(before.keys() & after.keys()):
            for key, value in after[name].items():
                if before[name].get(key) != value:
                    lines.append(f"{word} “{name}” {key} {before[name].get(key)} → {value}")
    return lines
