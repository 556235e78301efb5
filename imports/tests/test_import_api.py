"""CSV import through the API: mapping, preview, rows created, updated and rejected by line, the
rejected-rows file, first touch kept, attributes, German Excel files, and who may do it."""

from __future__ import annotations

import json

import pytest

from imports.models import ImportJob, ImportRejection
from imports.tasks import import_job_run_task
from leads.models import Activity, ActivityType, ConsentStatus, Lead
from leads.tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = (
    "E-Mail,Vorname,Nachname,Firma,Land,Branche,Messe\n"
    "anna@alpha.example,Anna,Alt,Alpha GmbH,DE,Software,Halle 3\n"  # line 2: new
    "not-an-email,Bert,Bad,Beta,DE,,\n"  # line 3: rejected (email)
    "KNOWN@acme.example,Karl,,,AT,,Halle 1\n"  # line 4: updates the existing lead
    "carl@gamma.example,Carl,C,Gamma,XX,,\n"  # line 5: rejected (country)
    "\n"  # line 6: blank, no row
    'dora@delta.example,Dora,D,"Delta, Inc.",US,,Stand 9\n'  # line 7: new
)
MAPPING = {
    "E-Mail": "email",
    "Vorname": "first_name",
    "Nachname": "last_name",
    "Firma": "company",
    "Land": "country",
    "Branche": "industry",
    "Messe": "attributes.booth",
}


def start(client, upload, content, mapping=MAPPING, name="leads.csv", **extra):
    data = {"file": upload(content, name), "mapping": json.dumps(mapping), **extra}
    if "defaults" in data and not isinstance(data["defaults"], str):
        data["defaults"] = json.dumps(data["defaults"])
    response = client.post("/api/v1/imports/", data, format="multipart")
    if response.status_code == 201:
        # The task is queued after the commit, which a test's transaction never reaches: run it
        # (the worker tests follow the queued message).
        import_job_run_task.delay(response.json()["id"])
    return response


def test_an_import_creates_updates_and_rejects_rows_by_line(api, marketing, upload):
    known = LeadFactory(email="known@acme.example", first_name="K", source="webinar", campaign="spring")
    client = api(marketing)

    response = start(client, upload, GOOD_AND_BAD, defaults={"source": "fair", "campaign": "expo-2026"})

    assert response.status_code == 201, response.json()
    job = ImportJob.objects.get()
    body = client.get(f"/api/v1/imports/{job.pk}/").json()
    assert {
        k: body[k] for k in ("status", "total_rows", "done_rows", "created_count", "updated_count", "rejected_count")
    } == {
        "status": "done",
        "total_rows": 5,
        "done_rows": 5,
        "created_count": 2,
        "updated_count": 1,
        "rejected_count": 2,
    }
    assert list(ImportRejection.objects.values_list("line", flat=True)) == [3, 5]
    assert ImportJob.objects.get().text == ""  # done: the file is not kept (its people are leads or rejections)
    assert Lead.objects.count() == 3
    anna = Lead.objects.get(email="anna@alpha.example")
    assert (anna.first_name, anna.company, str(anna.country.code), anna.industry) == (
        "Anna",
        "Alpha GmbH",
        "DE",
        "Software",
    )
    assert anna.attributes == {"booth": "Halle 3"}
    assert (anna.source, anna.campaign, anna.consent_status, anna.stage) == ("fair", "expo-2026", "none", "new")
    assert Lead.objects.get(email="dora@delta.example").company == "Delta, Inc."
    # The existing lead: filled and overwritten where the file has a value, first touch kept, the
    # import is its latest touch.
    known.refresh_from_db()
    assert (known.first_name, known.last_name, str(known.country.code)) == ("Karl", known.last_name, "AT")
    assert (known.source, known.campaign) == ("webinar", "spring")
    assert (known.latest_source, known.latest_campaign) == ("fair", "expo-2026")
    assert known.attributes == {"booth": "Halle 1"}
    captured = Activity.objects.filter(type=ActivityType.CAPTURED)
    assert sorted(captured.values_list("lead__email", "source")) == [
        ("anna@alpha.example", "import"),
        ("dora@delta.example", "import"),
        ("known@acme.example", "import"),
    ]
    # Scoring is told as for any capture (score_inputs_changed raises score_rev, once per capture).
    assert sorted(Lead.objects.values_list("email", "score_rev")) == [
        ("anna@alpha.example", 1),
        ("dora@delta.example", 1),
        ("known@acme.example", 1),
    ]

    rejected = client.get(f"/api/v1/imports/{job.pk}/rejected/")
    assert rejected.status_code == 200
    assert rejected["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(rejected.streaming_content).decode("utf-8")
    assert text == (
        "\ufeffE-Mail,Vorname,Nachname,Firma,Land,Branche,Messe,line,error\r\n"
        "not-an-email,Bert,Bad,Beta,DE,,,3,email: Enter a valid email address.\r\n"
        'carl@gamma.example,Carl,C,Gamma,XX,,,5,"country: ""XX"" is not a valid ISO 3166-1 alpha-2 country code."\r\n'
    )


def test_a_row_is_rejected_for_what_the_capture_api_rejects_with_its_message(api, marketing, integration, upload):
    rows = "email,company_size,first_name\nbig@x.example,many," + "x" * 300 + "\n"
    api_answer = api(integration).post(
        "/api/v1/leads/", {"email": "big@x.example", "company_size": "many", "first_name": "x" * 300}
    )
    assert api_answer.status_code == 400
    start(
        api(marketing),
        upload,
        rows,
        mapping={"email": "email", "company_size": "company_size", "first_name": "first_name"},
    )
    rejection = ImportRejection.objects.get()
    assert rejection.errors == api_answer.json()
    assert Lead.objects.count() == 0


def test_a_german_excel_file_semicolons_and_cp1252_umlauts(api, marketing, upload):
    raw = "E-Mail;Vorname;Nachname;Firma;Stadt\r\njörg@müller.example;Jörg;Müller;Müller & Söhne GmbH;Köln\r\n"
    raw = raw.replace("jörg@müller.example", "joerg@mueller.example").encode("cp1252")
    client = api(marketing)

    preview = client.post("/api/v1/imports/preview/", {"file": upload(raw)}, format="multipart").json()
    assert (preview["encoding"], preview["delimiter"]) == ("cp1252", ";")
    assert preview["suggested_mapping"] == {
        "E-Mail": "email",
        "Vorname": "first_name",
        "Nachname": "last_name",
        "Firma": "company",
        "Stadt": "",
    }
    response = start(client, upload, raw, mapping={**preview["suggested_mapping"], "Stadt": "attributes.city"})
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.last_name, lead.company) == (
        "joerg@mueller.example",
        "Jörg",
        "Müller",
        "Müller & Söhne GmbH",
    )
    assert lead.attributes == {"city": "Köln"}


def test_utf8_with_bom_and_tabs(api, marketing, upload):
    raw = "\ufeffEmail\tFirst name\tCompany\nzoe@z.example\tZoë\tZ AG\n".encode()
    start(api(marketing), upload, raw, mapping={"Email": "email", "First name": "first_name", "Company": "company"})
    assert Lead.objects.values_list("email", "first_name", "company").get() == ("zoe@z.example", "Zoë", "Z AG")


def test_the_preview_maps_the_first_rows_and_changes_nothing(api, marketing, upload):
    known = LeadFactory(email="known@acme.example", first_name="K")
    before = (Lead.objects.count(), Activity.objects.count(), ImportJob.objects.count())
    response = api(marketing).post(
        "/api/v1/imports/preview/",
        {"file": upload(GOOD_AND_BAD), "defaults": json.dumps({"source": "fair"})},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["header"] == ["E-Mail", "Vorname", "Nachname", "Firma", "Land", "Branche", "Messe"]
    assert body["mapping"] == {**MAPPING, "Messe": ""}  # the suggestion; an unknown column is skipped
    assert body["total_rows"] == 5
    assert [(row["line"], row["errors"]) for row in body["rows"]] == [
        (2, {}),
        (3, {"email": ["Enter a valid email address."]}),
        (4, {}),
        (5, {"country": ['"XX" is not a valid ISO 3166-1 alpha-2 country code.']}),
        (7, {}),
    ]
    assert body["rows"][0]["data"] == {
        "email": "anna@alpha.example",
        "first_name": "Anna",
        "last_name": "Alt",
        "company": "Alpha GmbH",
        "country": "DE",
        "industry": "Software",
        "source": "fair",
    }
    assert (Lead.objects.count(), Activity.objects.count(), ImportJob.objects.count()) == before
    known.refresh_from_db()
    assert known.first_name == "K"


@pytest.mark.parametrize(
    ("mapping", "defaults", "field", "message"),
    [
        (
            {"Vorname": "first_name"},
            {},
            "mapping",
            "Map one column to email: the e-mail address is how a lead is found.",
        ),
        ({"E-Mail": "email", "Vorname": "stage"}, {}, "mapping", '"stage" is not a lead field'),
        ({"E-Mail": "email", "Vorname": "email"}, {}, "mapping", "Each field takes one column; more than one: email."),
        ({"E-Mail": "email", "Nope": "company"}, {}, "mapping", "Columns not in the file: Nope."),
        ({"E-Mail": "email"}, {"stage": "mql"}, "defaults", '"stage" cannot be a default'),
    ],
)
def test_a_bad_mapping_is_a_400_and_nothing_is_stored(api, marketing, upload, mapping, defaults, field, message):
    response = start(api(marketing), upload, GOOD_AND_BAD, mapping=mapping, defaults=defaults)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert response.json()[field][0].startswith(message)
    assert (ImportJob.objects.count(), Lead.objects.count()) == (0, 0)


def test_files_over_the_limits_are_a_400(api, marketing, upload, settings):
    settings.IMPORT_MAX_ROWS = 3
    response = start(api(marketing), upload, GOOD_AND_BAD)
    assert response.status_code == 400
    assert response.json() == {"file": ["The file has 5 rows. At most 50 MB and 3 rows per file."]}
    settings.IMPORT_MAX_BYTES = 100
    response = start(api(marketing), upload, GOOD_AND_BAD)
    assert response.json() == {"file": ["The file is too large. At most 0 MB and 3 rows per file."]}
    empty = start(api(marketing), upload, "")
    assert empty.json() == {"file": ["The submitted file is empty."]}
    assert ImportJob.objects.count() == 0


def test_has_consent_sends_new_leads_the_double_opt_in_and_never_confirms(
    api, marketing, upload, mailoutbox, django_capture_on_commit_callbacks
):
    LeadFactory(email="withdrawn@acme.example", consent_status=ConsentStatus.WITHDRAWN)
    rows = "email\nnew@acme.example\nwithdrawn@acme.example\n"
    with django_capture_on_commit_callbacks(execute=True):
        start(api(marketing), upload, rows, mapping={"email": "email"}, has_consent="true")
    new = Lead.objects.get(email="new@acme.example")
    assert (new.consent_status, new.stage) == ("pending", "new")
    assert Lead.objects.get(email="withdrawn@acme.example").consent_status == "withdrawn"
    assert [m.to for m in mailoutbox] == [["new@acme.example"]]


def test_without_consent_the_leads_stay_without_and_no_mail_goes_out(
    api, marketing, upload, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        start(api(marketing), upload, "email\nnew@acme.example\n", mapping={"email": "email"})
    assert Lead.objects.get().consent_status == "none"
    assert mailoutbox == []


def test_a_value_our_export_quoted_is_imported_as_its_text(api, marketing, upload):
    start(
        api(marketing), upload, "email,phone\nq@x.example,'+49 30 1234\n", mapping={"email": "email", "phone": "phone"}
    )
    assert Lead.objects.get().phone == "+49 30 1234"


def test_who_may_import(api, marketing, integration, sales_manager, rep_a, partner_a, upload):
    for user, expected in [(sales_manager, 403), (rep_a, 403), (partner_a, 404)]:
        assert start(api(user), upload, GOOD_AND_BAD).status_code == expected, user
    assert ImportJob.objects.count() == 0
    # An integration client imports with its capture token and sees only its own jobs.
    own = start(api(integration), upload, GOOD_AND_BAD).json()["id"]
    others = start(api(marketing), upload, GOOD_AND_BAD).json()["id"]
    client = api(integration)
    assert client.get(f"/api/v1/imports/{own}/").status_code == 200
    assert client.get(f"/api/v1/imports/{others}/").status_code == 404
    assert client.get(f"/api/v1/imports/{others}/rejected/").status_code == 404
    assert [job["id"] for job in client.get("/api/v1/imports/").json()["results"]] == [own]
    assert api(marketing).get(f"/api/v1/imports/{own}/").status_code == 200
    assert api(partner_a).get(f"/api/v1/imports/{own}/").status_code == 404
    assert api(marketing, scopes=["read"]).get(f"/api/v1/imports/{own}/").status_code == 403


def test_a_row_of_a_person_erased_at_their_request_is_rejected(api, marketing, upload):
    from leads import erasure

    erased = LeadFactory(email="gone@acme.example")
    erasure.lead_erase(lead=erased, actor=marketing)
    rows = "email,first_name\ngone@acme.example,Gone\nstays@acme.example,Stays\n"
    for has_consent in ("false", "true"):  # a list is not the person's new consent
        start(
            api(marketing),
            upload,
            rows,
            mapping={"email": "email", "first_name": "first_name"},
            has_consent=has_consent,
        )
    assert list(ImportRejection.objects.values_list("line", "errors")) == [
        (2, {"email": ["This person's data was erased at their request."]}),
        (2, {"email": ["This person's data was erased at their request."]}),
    ]
    assert not Lead.objects.filter(email="gone@acme.example").exists()
    assert Lead.objects.filter(email="stays@acme.example").count() == 1
    preview = api(marketing).post("/api/v1/imports/preview/", {"file": upload(rows)}, format="multipart").json()
    assert preview["rows"][0]["errors"] == {"email": ["This person's data was erased at their request."]}
