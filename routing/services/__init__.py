"""Every write of routing, one module per concern:

- `route` — routing one MQL (`lead_route`);
- `batch` — routing the MQLs waiting behind it together (`leads_route_waiting`);
- `actions` — what reps, partners and managers do (accept, reject, claim, reassign, availability);
- `sla` — deadlines, escalation and the fallback of a run-out chain, the unassigned queue's retry;
- `notify` — the e-mails;
- the handover state itself (owner, deadline, suppression, assignment status) is `routing.handover`'s.

Tasks (`routing.tasks`) are named `*_task` and call these; no task shares a service's name.
"""

from ..handover import RoutingError, follow_stage
from .actions import assignment_accept, assignment_reassign, assignment_reject, pool_claim, rep_set_availability
from .batch import ROUTE_BATCH, leads_route_waiting
from .notify import assignments_notify
from .route import lead_route
from .sla import sla_enforce, unassigned_retry

__all__ = [
    "ROUTE_BATCH",
    "RoutingError",
    "assignment_accept",
    "assignment_reassign",
    "assignment_reject",
    "assignments_notify",
    "follow_stage",
    "lead_route",
    "leads_route_waiting",
    "pool_claim",
    "rep_set_availability",
    "sla_enforce",
    "unassigned_retry",
]
