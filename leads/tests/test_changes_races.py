"""The changes feed under concurrent writers, on PostgreSQL, each writer in its own thread and connection.

Invariant: a reader paging through the feed while writers commit — some holding their transaction
open while later ones commit first — serves every committed change exactly once, at the key it
committed with, in increasing key order: nothing skipped, nothing repeated. Each lead is written once
after the reader's starting cursor (its score updated, or an activity stored for it), so "every
change once" is exactly "every written lead once".
Without the horizon (leads.sql.changes_after's portable twin run on PostgreSQL) the reader steps
over the changes of the transactions held open: this test then fails with leads missing.
"""

from __future__ import annotations

import queue
import random
import threading
import time

import pytest
from django.db import connection, transaction
from django.db.models import F

from leads import changes, services
from leads.models import ActivityType, Lead, LeadChange
from leads.tests.factories import LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEADS = 120
WRITERS = 6


def _write(todo: queue.Queue, committed: list, lock: threading.Lock, seed: int) -> None:
    rng = random.Random(seed)
    try:
        while True:
            try:
                pk, other = todo.get_nowait()
            except queue.Empty:
                return
            with transaction.atomic():
                # Some transactions take their id early (a write elsewhere) and their number late.
                if rng.random() < 0.3:
                    Lead.objects.filter(pk=other).update(attributes={"touched": seed})
                    time.sleep(rng.uniform(0, 0.02))
                if rng.random() < 0.5:
                    Lead.objects.filter(pk=pk).update(score=F("score") + 1)  # as scoring's bulk UPDATE
                else:
                    services.activity_record(lead=Lead(pk=pk), type=ActivityType.NOTE)  # the lead row untouched
                key = LeadChange.objects.filter(lead_id=pk).values_list("change_xid", "change_seq").get()
                time.sleep(rng.choice([0, 0, 0, 0.005, 0.05, 0.2]))  # some held open while others commit
            with lock:
                committed.append((pk, key))
    finally:
        connection.close()


def _read(after, served: list, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            page, after = changes.changes_page(after=after, limit=7)
            served.extend((change.lead_id, change.key) for change in page)
            if not page:
                time.sleep(0.002)
    finally:
        connection.close()


def test_a_reader_paging_while_writers_commit_sees_every_change_exactly_once(settled):
    # given leads written before the reader's cursor, and a settled feed read to its end
    targets = LeadFactory.create_batch(LEADS)
    others = LeadFactory.create_batch(WRITERS)  # written by a transaction before its target
    settled()
    start, after = [], changes.START
    while page := changes.changes_page(after=after, limit=1000)[0]:
        start.extend(page)
        after = page[-1].key
    assert len(start) == LEADS + WRITERS

    # when writers each change a share of the leads once, while a reader pages through the feed
    todo: queue.Queue = queue.Queue()
    for lead in targets:
        todo.put((lead.pk, random.choice(others).pk))
    committed: list = []
    served: list = []
    lock, stop = threading.Lock(), threading.Event()
    reader = threading.Thread(target=_read, args=(after, served, stop))
    writers = [threading.Thread(target=_write, args=(todo, committed, lock, seed)) for seed in range(WRITERS)]
    reader.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    settled()
    time.sleep(0.2)  # the reader's last pages
    stop.set()
    reader.join(30)

    # then every committed change of a target once, at its key, and keys only ever increasing
    target_ids = {lead.pk for lead in targets}
    served_targets = [(pk, key) for pk, key in served if pk in target_ids]
    assert len(committed) == LEADS
    skipped = set(committed) - set(served_targets)
    assert not skipped, f"{len(skipped)} of {LEADS} changes skipped"
    assert sorted(served_targets) == sorted(committed)
    keys = [key for _, key in served]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
