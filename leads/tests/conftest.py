from __future__ import annotations

import time

import pytest
from django.db import connection

from leads import sql
from leads.models import LeadChange


def _settled(timeout: float = 90.0) -> None:
    """Wait until every lead change committed so far lies below the changes feed's horizon
    (PostgreSQL: a writing transaction anywhere on the server — another database's too, xids are
    the cluster's — holds it back until it ends; on a shared server that can be a while)."""
    if not sql.postgresql():
        return
    newest = LeadChange.objects.order_by("-change_xid").values_list("change_xid", flat=True).first() or 0
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            if cursor.fetchone()[0] > newest or time.monotonic() > deadline:
                return
            time.sleep(0.05)


@pytest.fixture
def settled():
    """`settled()`: wait until the changes feed serves everything committed so far."""
    return _settled
