"""The changes feed under every interleaving hypothesis can find, on PostgreSQL: transactions on
connections of their own begin, write a lead (its score, an activity, or a delete), commit or roll
back in any order, while a reader pages through the feed between any two steps.

Invariant: every write of a committed transaction is served, at the key it committed with; nothing
of a rolled-back one is; keys only ever increase and none comes twice. Each lead is written by one
transaction at most, so no step waits for a lock (the steps run one after another in this thread).
Without the horizon (leads.sql.changes_after's portable read on PostgreSQL) hypothesis finds the
counterexample at once: an older transaction commits after a younger one was served.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads import changes
from leads.models import Lead, LeadChange
from leads.tests.factories import LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CONNECTIONS = 3
WRITES = ("score", "activity", "delete")

step = st.one_of(
    st.tuples(st.just("write"), st.integers(0, CONNECTIONS - 1), st.sampled_from(WRITES)),
    st.tuples(st.just("commit"), st.integers(0, CONNECTIONS - 1)),
    st.tuples(st.just("rollback"), st.integers(0, CONNECTIONS - 1)),
    st.tuples(st.just("read"), st.integers(1, 4)),
)


def _connect() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"], port=s["PORT"] or None
    )


def _write(cur: psycopg.Cursor, lead_id: int, kind: str) -> tuple[int, int]:
    """One write as the app makes it (the lead's lock first, then the change); the key it got."""
    if kind == "score":
        cur.execute("UPDATE leads_lead SET score = score + 1 WHERE id = %s", [lead_id])
    elif kind == "activity":
        cur.execute("SELECT 1 FROM leads_lead WHERE id = %s FOR NO KEY UPDATE", [lead_id])
        cur.execute(
            "INSERT INTO leads_activity (lead_id, type, occurred_at, properties, source, created_at)"
            " VALUES (%s, 'note', now(), '{}', '', now())",
            [lead_id],
        )
    else:
        cur.execute("DELETE FROM leads_lead WHERE id = %s", [lead_id])
    cur.execute("SELECT change_xid, change_seq FROM leads_leadchange WHERE lead_id = %s", [lead_id])
    return cur.fetchone()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=4, max_size=24))
def test_any_interleaving_serves_every_committed_change_once_and_nothing_else(steps, settled):
    made = [lead.pk for lead in LeadFactory.create_batch(sum(1 for s in steps if s[0] == "write"))]
    leads = iter(made)
    # their insertion's keys: the reader may serve those too, before a write gives a lead its next
    inserted = set(LeadChange.objects.filter(lead_id__in=made).values_list("lead_id", "change_xid", "change_seq"))
    conns = [_connect() for _ in range(CONNECTIONS)]
    open_writes: list[list[tuple[int, tuple[int, int]]]] = [[] for _ in conns]
    committed: list[tuple[int, tuple[int, int]]] = []
    rolled_back: list[tuple[int, tuple[int, int]]] = []
    # the reader starts from the end of what is served now
    served: list[tuple[int, tuple[int, int]]] = []
    after = changes.START
    while page := changes.changes_page(after=after, limit=1000)[0]:
        after = page[-1].key

    def read(limit: int) -> None:
        nonlocal after
        page, after = changes.changes_page(after=after, limit=limit)
        served.extend((change.lead_id, change.key) for change in page)

    try:
        for action, *args in steps:
            if action == "write":
                i, kind = args
                lead_id = next(leads)
                open_writes[i].append((lead_id, _write(conns[i].cursor(), lead_id, kind)))
            elif action in ("commit", "rollback"):
                (i,) = args
                (conns[i].commit if action == "commit" else conns[i].rollback)()
                (committed if action == "commit" else rolled_back).extend(open_writes[i])
                open_writes[i] = []
            else:
                read(args[0])
        for i, conn in enumerate(conns):
            conn.commit()
            committed.extend(open_writes[i])
    finally:
        for conn in conns:
            conn.close()

    settled()
    while True:
        before = len(served)
        read(1000)
        if len(served) == before:
            break

    written = {lead_id for lead_id, _ in committed + rolled_back}
    mine = [(lead_id, key) for lead_id, key in served if lead_id in written and (lead_id, *key) not in inserted]
    assert sorted(mine) == sorted(committed)  # every committed write once, at its key; no rolled-back one
    keys = [key for _, key in served]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    # a rolled-back write left the lead as it was
    assert set(Lead.objects.filter(pk__in=[pk for pk, _ in rolled_back]).values_list("pk", flat=True)) == {
        pk for pk, _ in rolled_back
    }
