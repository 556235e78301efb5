"""What the `leads` app announces. Other apps react; `leads` never imports them.

Every announcement is sent only after the transaction that made the change commits
(`announce` wraps `transaction.on_commit`), so a receiver that queues a Celery task never sees a
row that is not there yet. Receivers are connected in the `ready()` of the app that reacts:

| signal               | keyword arguments                         | sent by                       |
|----------------------|-------------------------------------------|-------------------------------|
| lead_captured        | lead_ids: list[int], created: bool         | lead_capture (profile and a   |
|                      |                                           | `captured` activity at once)  |
| profile_changed      | lead_ids: list[int]                        | lead_update                   |
| activities_recorded  | lead_ids: list[int]                        | events_ingest, activity_record|
| stage_changed        | lead_id, from_stage, to_stage, actor_id    | lead_transition,              |
|                      |                                           | lead_transition_many (per lead)|

Two signals are different: `score_inputs_changed` (lead_ids) is sent *inside* the transaction that
changed what a score is computed from (an activity stored, the profile changed), right after the
leads' `score_rev` was raised. Its receivers record the follow-up work durably in that same
transaction (scoring: a pending row) and ring the broker only after the commit
(`leadportal.celery.enqueue`), so a dead worker or a broker outage delays the work but never loses
it. Such receivers must only write rows: no I/O, nothing slow.

And `stage_changed_in_transaction` (lead_id, from_stage, to_stage, actor_id) is sent inside
the move's transaction, for state that must move with the stage (routing closes or accepts the
lead's open assignment), so that a crash or an outage after the commit cannot leave them apart;
its kwargs also carry the move's `reason`.

`lead_saved_in_transaction` (lead_ids: list[int], created: bool, fields: list[str], leads: list[Lead])
is sent inside the transaction that created leads or changed their profile — lead_capture (a new
lead, or a known e-mail whose fields changed), lead_update (API and admin edits), and events_ingest
for the leads an unknown e-mail created (`leads` empty: load them by id) — never for an activity or
a score. `fields` names what changed; `leads` are the instances as saved. Webhooks record
`lead.created` / `lead.updated` in that transaction (webhooks.receivers). Rows only, nothing slow.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal

lead_captured = Signal()
profile_changed = Signal()
activities_recorded = Signal()
stage_changed = Signal()
score_inputs_changed = Signal()  # in the transaction; see above
stage_changed_in_transaction = Signal()  # in the transaction; see above
lead_erased_in_transaction = Signal()  # in the transaction; see above
personal_data_requested = Signal()  # answered synchronously; see above
lead_saved_in_transaction = Signal()  # in the transaction; see above
# Answered synchronously too: scoring's preview asks who would be handed leads that became MQL now
# (leads: list of (Lead, facts to route by)); routing answers with rows {"assignee", "leads"}.
handover_forecast_requested = Signal()


def announce_stage_change(**kwargs: Any) -> None:
    """A lifecycle move: `stage_changed_in_transaction` now, `stage_changed` after the commit."""
    stage_changed_in_transaction.send(sender="leads", **kwargs)
    announce(stage_changed, **kwargs)


def announce(signal: Signal, **kwargs: Any) -> None:
    """Send `signal` once the current transaction commits (at once when there is none)."""
    transaction.on_commit(lambda: signal.send(sender="leads", **kwargs))
