"""Leads → Import a CSV in the admin: upload, mapping (suggested), preview, start, progress (htmx
fragment), the rejected rows; only for those who may import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imports.models import ImportJob, SavedMapping
from imports.tasks import import_job_run_task
from leads.models import Lead
from leads.tests.factories import client_for

pytestmark = pytest.mark.django_db

FILE = "E-Mail;Vorname;Firma;Messe\r\nanna@alpha.example;Anna;Alpha;Halle 3\r\nkaputt;Bert;Beta;\r\n".encode("cp1252")


def test_upload_map_preview_start_and_follow(marketing, django_capture_on_commit_callbacks):
    client = client_for(marketing)
    page = client.get("/admin/imports/importjob/upload/")
    assert page.status_code == 200
    assert "Import a CSV" in page.content.decode()

    response = client.post("/admin/imports/importjob/upload/", {"file": SimpleUploadedFile("messe.csv", FILE)})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/imports/importjob/{job.pk}/mapping/"
    assert (job.status, job.mapping) == (
        "draft",
        {"E-Mail": "email", "Vorname": "first_name", "Firma": "company", "Messe": ""},
    )

    mapping = client.get(f"/admin/imports/importjob/{job.pk}/mapping/").content.decode()
    assert "anna@alpha.example" in mapping and "Enter a valid email address." in mapping
    assert Lead.objects.count() == 0  # the preview imports nothing

    form = {
        "col_0": "email",
        "col_1": "first_name",
        "col_2": "company",
        "col_3": "attributes.messe",
        "source": "fair",
        "campaign": "",
        "save_as": "Messe-Listen",
        "start": "1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/admin/imports/importjob/{job.pk}/mapping/", form)
    assert started.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.created_count, job.rejected_count) == ("done", 1, 1)
    lead = Lead.objects.get()
    assert (lead.first_name, lead.company, lead.source, lead.attributes) == (
        "Anna",
        "Alpha",
        "fair",
        {"messe": "Halle 3"},
    )
    assert SavedMapping.objects.get().mapping == {
        "E-Mail": "email",
        "Vorname": "first_name",
        "Firma": "company",
        "Messe": "attributes.messe",
    }

    progress = client.get(f"/admin/imports/importjob/{job.pk}/progress/").content.decode()
    assert "htmx" in progress and "<script>" not in progress  # the script is a static file (CSP)
    fragment = client.get(f"/admin/imports/importjob/{job.pk}/progress/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="import-progress"') and "hx-trigger" not in fragment  # done: no more polling
    assert "2 of 2 rows done" in fragment
    rejected = client.get(f"/admin/imports/importjob/{job.pk}/rejected/")
    assert (
        b"".join(rejected.streaming_content).decode().splitlines()[1]
        == "kaputt,Bert,Beta,,3,email: Enter a valid email address."
    )


def test_a_running_import_polls_and_a_bad_start_keeps_the_draft(marketing):
    client = client_for(marketing)
    client.post("/admin/imports/importjob/upload/", {"file": SimpleUploadedFile("messe.csv", FILE)})
    job = ImportJob.objects.get()
    form = {"col_0": "", "col_1": "first_name", "col_2": "company", "col_3": "", "start": "1"}
    page = client.post(f"/admin/imports/importjob/{job.pk}/mapping/", form)
    assert page.status_code == 200
    assert "Map one column to email" in page.content.decode()
    job.refresh_from_db()
    assert job.status == "draft"
    import_job_run_task.delay(job.pk)  # a draft is never imported
    job.refresh_from_db()
    assert (job.status, job.done_rows, Lead.objects.count()) == ("draft", 0, 0)
    ImportJob.objects.filter(pk=job.pk).update(status="running")
    fragment = client.get(f"/admin/imports/importjob/{job.pk}/progress/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in fragment


def test_sales_managers_and_reps_may_not_import(sales_manager, rep_a):
    assert client_for(sales_manager).get("/admin/imports/importjob/upload/").status_code == 403
    assert client_for(rep_a).get("/admin/imports/importjob/upload/").status_code == 302  # not staff: sign in
