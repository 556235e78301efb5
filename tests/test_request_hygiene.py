"""A NUL in the query string is a 400, never a 500; personal data is never cached (part of #12)."""


from leads.tests.factories import LeadFactory, client_for


def test_a_nul_in_an_admin_filter_is_a_400_not_a_500(admin_client):
    LeadFactory()
    answer = admin_client.get("/admin/leads/lead/?stage__exact=%00")
    assert answer.status_code == 400
    assert answer.content.decode() == "The address contains a character that cannot be stored (NUL)."
    assert admin_client.get("/admin/leads/lead/?stage__exact=mal").status_code == 200


def test_a_nul_in_an_api_search_is_a_json_400(marketing, api):
    answer = api(marketing).get("/api/v1/leads/?search=a%00b")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "The address contains a character that cannot be stored (NUL)."}


def test_pages_of_a_signed_in_person_and_api_answers_are_not_cached(rep_a, marketing, api):
    page = client_for(rep_a).get("/app/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]
    answer = api(marketing).get("/api/v1/leads/")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
