"""Imports through real Celery worker processes on Redis and PostgreSQL: an import the API queued,
and a worker killed (SIGKILL) in the middle of one, whose job the pickup finishes with no row lost
or doubled."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import ImportJob
from imports.tasks import import_jobs_resume_task
from leads.models import Activity, ActivityType, Lead
from leads.tests.factories import LeadFactory
from tests.worker import celery_worker, new_queue, producer, wait_for, worker_process

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def csv_file(rows: int, existing: list[str]) -> SimpleUploadedFile:
    lines = ["email;vorname;firma"]
    lines += [f"{email};Known {n};Updated" for n, email in enumerate(existing)]
    lines += [f"person{n}@firma-{n % 50}.example;Person {n};Firma {n % 50}" for n in range(rows - len(existing))]
    return SimpleUploadedFile("leads.csv", ("\r\n".join(lines) + "\r\n").encode("cp1252"), content_type="text/csv")


def post_import(api, user, file) -> int:
    response = api(user).post(
        "/api/v1/imports/",
        {"file": file, "mapping": json.dumps({"email": "email", "vorname": "first_name", "firma": "company"})},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_an_import_the_api_queued_is_done_by_a_real_worker(api, marketing):
    existing = [LeadFactory(email=f"known{n}@acme.example", source="webinar").email for n in range(20)]
    with celery_worker() as worker:
        job_id = post_import(api, marketing, csv_file(300, existing))
        done = wait_for(lambda: ImportJob.objects.get(pk=job_id).status == "done", timeout=60)
        assert done, worker.tail()
    job = ImportJob.objects.get(pk=job_id)
    assert (job.done_rows, job.created_count, job.updated_count, job.rejected_count) == (300, 280, 20, 0)
    assert Lead.objects.count() == 300
    assert set(Lead.objects.filter(email__in=existing).values_list("source", "company")) == {("webinar", "Updated")}


def test_a_worker_killed_mid_import_loses_and_doubles_nothing(api, marketing, settings):
    rows = 6000
    existing = [LeadFactory(email=f"known{n}@acme.example").email for n in range(200)]
    queue = new_queue()
    with worker_process(queue, env={"IMPORT_BATCH": "100"}) as worker:
        with producer(queue):
            job_id = post_import(api, marketing, csv_file(rows, existing))
        moving = wait_for(lambda: ImportJob.objects.get(pk=job_id).done_rows >= 600, timeout=60, interval=0.02)
        assert moving, worker.tail()
        worker.kill()  # SIGKILL, mid-batch or between batches
    job = ImportJob.objects.get(pk=job_id)
    assert job.status == "running"
    assert 600 <= job.done_rows < rows, "the worker finished before it was killed: make the file longer"
    # What the cursor says is done is exactly what is in the database: a batch commits with its cursor.
    captured = Activity.objects.filter(type=ActivityType.CAPTURED)
    assert captured.count() == job.done_rows
    assert job.created_count + job.updated_count == job.done_rows

    # The pickup (the beat job, with the job stale) finishes it from the cursor, in this process.
    settings.IMPORT_STALE_AFTER = 0
    assert import_jobs_resume_task() == 1

    job.refresh_from_db()
    assert (job.status, job.done_rows, job.created_count, job.updated_count, job.rejected_count) == (
        "done",
        rows,
        rows - 200,
        200,
        0,
    )
    assert Lead.objects.count() == rows
    assert captured.count() == rows  # one `captured` activity per row: none lost, none doubled
    assert import_jobs_resume_task() == 0  # nothing left to pick up
