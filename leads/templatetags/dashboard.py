"""Template helpers of the rep dashboard: SLA countdowns and readable timeline entries."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from leads.formatting import format_code, format_datetime, format_duration, format_money, format_reason
from leads.models import Activity, ActivityType, LostReason, Stage

register = template.Library()

SOON = 15 * 60  # seconds: amber from here


def _duration(seconds: float) -> str:
    # static/js/app.js ticks the countdown on in the same words (its fmt()).
    return format_duration(abs(seconds))


@register.simple_tag
def sla(due: datetime | None, now: datetime | None = None):
    """A live countdown to `due` (the page's script keeps it ticking); red once overdue."""
    if due is None:
        return ""
    left = (due - (now or timezone.now())).total_seconds()
    state = "overdue" if left < 0 else "soon" if left < SOON else ""
    text = f"overdue {_duration(left)}" if left < 0 else f"{_duration(left)} left"
    return format_html(
        '<span class="sla {}" data-due="{}" title="Accept by {}">{}</span>',
        state,
        due.isoformat(),
        format_datetime(due),
        text,
    )


@register.filter
def ago(moment: datetime | None) -> str:
    """Compact age: just now, 5m ago, 3h ago, 2d ago."""
    if moment is None:
        return ""
    seconds = max(0, (timezone.now() - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def _stage(code: str) -> str:
    try:
        return Stage(code).label
    except ValueError:
        return code or "?"


def _words(code: str) -> str:
    """A stored code in words: a lost reason by its label, any other code ("no_capacity") spelled
    out ("No capacity") — the partners' labels live above this layer."""
    try:
        return str(LostReason(code).label)
    except ValueError:
        return code.replace("_", " ").capitalize()


def _listed(value) -> str:
    """A property's value in words: a list of field names as "consent at, consent status"."""
    if isinstance(value, list):
        return ", ".join(str(item).replace("_", " ") for item in value)
    return str(value)


def _assignment(p: dict) -> tuple[str, str]:
    event, who = p.get("event", ""), p.get("assignee", "")
    rule = f"rule “{p['rule']}”" if p.get("rule") else ""
    titles = {
        "active": f"Assigned to {who}",
        "pooled": "Put in the pool",
        "unassigned": "No rule could place it",
        "accepted": f"Accepted by {who}",
        "reassigned": f"Reassigned to {who}",
        "claimed from the pool": f"Claimed from the pool by {who}",
        "SLA missed": f"SLA missed by {who}",
    }
    if event.startswith("rejected"):
        return f"Rejected by {who}", event.partition(": ")[2]
    return titles.get(event, f"{event.capitalize()}: {who}"), rule


@register.filter
def describe(activity: Activity) -> tuple[str, str]:
    """(title, body) of a timeline entry, in words."""
    p = activity.properties or {}
    kind = activity.type
    if kind == ActivityType.STAGE_CHANGE:
        return f"{_stage(p.get('from', ''))} → {_stage(p.get('to', ''))}", format_reason(p.get("reason", ""))
    if kind == ActivityType.ASSIGNMENT:
        return _assignment(p)
    if kind == ActivityType.CAPTURED:
        fields = ", ".join(name.replace("_", " ") for name in p.get("fields", []))
        if p.get("created"):
            return "Captured", f"New lead{' from ' + format_code(activity.source) if activity.source else ''}"
        return "Captured again", f"Updated: {fields}" if fields else "No new details"
    if kind == ActivityType.NOTE:
        return "Note", p.get("text", "")
    if kind in (ActivityType.CALL, ActivityType.MEETING):
        return activity.get_type_display(), p.get("summary", "")
    if kind == ActivityType.QUALIFICATION:
        lines = [
            f"{'✓' if (p.get(name) or {}).get('confirmed') else '✗'} {name.title()}"
            + (f": {p[name]['note']}" if (p.get(name) or {}).get("note") else "")
            for name in ("budget", "authority", "need", "timing")
        ]
        confirmed = sum(1 for name in ("budget", "authority", "need", "timing") if (p.get(name) or {}).get("confirmed"))
        return f"BANT: {confirmed} of 4 confirmed", "\n".join(lines)
    if kind == ActivityType.PARTNER_FEEDBACK:
        title = f"Partner feedback: {_words(p.get('status', ''))}".rstrip(": ")
        parts = [_words(p["reason"])] if p.get("reason") else []
        parts += [str(p[key]) for key in ("text", "note") if p.get(key)]
        if p.get("deal_value"):
            parts.append(format_money(p["deal_value"], p.get("currency") or "EUR"))
        return title, " — ".join(parts)
    shown = {k: v for k, v in p.items() if v not in ("", None, [], {}) and not isinstance(v, dict)}
    details = ", ".join(f"{k.replace('_', ' ')}: {_listed(v)}" for k, v in shown.items())
    return activity.get_type_display(), details


@register.filter
def duration_hours(value) -> str:
    """A timedelta as "3 h 20 min" (or "2 days 4 h"): leads.formatting.format_duration."""
    if value is None:
        return ""
    return _duration(value.total_seconds())


@register.filter
def split(text: str) -> list[str]:
    """"a b c"|split: the words, for a loop over named columns."""
    return text.split()


@register.filter
def get(mapping: dict, key: str):
    """mapping|get:key, for keys held in a variable (a list's column headers)."""
    return mapping.get(key, "")
