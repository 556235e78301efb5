"""The lifecycle transition table. The only place that knows which moves are allowed."""

from __future__ import annotations

from .errors import Refused
from .models import Stage

S = Stage
# (from, to) → a reason is required
TRANSITIONS: dict[tuple[str, str], bool] = {
    (S.NEW, S.MAL): False,
    (S.NEW, S.DISQUALIFIED): False,
    (S.MAL, S.MQL): False,
    (S.MAL, S.DISQUALIFIED): False,
    (S.MQL, S.SAL): False,
    (S.MQL, S.MAL): True,  # rejected by sales
    (S.MQL, S.DISQUALIFIED): False,
    (S.SAL, S.SQL): False,
    (S.SAL, S.MAL): True,  # recycled
    (S.SAL, S.LOST): False,
    (S.SQL, S.WON): False,
    (S.SQL, S.LOST): False,
    (S.LOST, S.MAL): False,  # recycled later
}

# Handed over to sales (a rep or a partner) and not yet closed: queues, workload and "open" filters.
OPEN_STAGES: tuple[Stage, ...] = (S.MQL, S.SAL, S.SQL)


class TransitionRefused(Refused):
    """A lifecycle move that the transition table does not allow (or that lacks its reason): 409
    with the move and the moves allowed from where the lead is."""

    code = "transition_refused"

    def __init__(self, from_stage: str, to_stage: str, message: str) -> None:
        self.from_stage = from_stage
        self.to_stage = to_stage
        self.allowed = allowed_moves(from_stage)
        super().__init__(message, extra={"from": from_stage, "to": to_stage, "allowed": self.allowed})


def allowed_moves(from_stage: str) -> list[str]:
    return [to for (frm, to) in TRANSITIONS if frm == from_stage]


def check_transition(from_stage: str, to_stage: str, reason: str = "") -> None:
    """Raise TransitionRefused unless from → to is allowed (with a reason where one is required)."""
    if (from_stage, to_stage) not in TRANSITIONS:
        allowed = ", ".join(allowed_moves(from_stage)) or "none"
        raise TransitionRefused(
            from_stage, to_stage, f"A lead cannot move from {from_stage} to {to_stage} (allowed: {allowed})."
        )
    if TRANSITIONS[(from_stage, to_stage)] and not reason.strip():
        raise TransitionRefused(from_stage, to_stage, f"Moving from {from_stage} to {to_stage} needs a reason.")
