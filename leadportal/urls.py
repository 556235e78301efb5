from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from leads.views import consent_page, healthz, home

admin.site.site_header = "LeadPortal administration"
admin.site.site_title = "LeadPortal"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("accounts.urls")),  # the reset views with limits, before Django's own
    path("accounts/", include("django.contrib.auth.urls")),
    path("app/", include("leads.urls")),
    path("app/", include("routing.urls")),
    path("partner/", include("partners.urls")),
    # The links of a lead's e-mails (leads.consent): public, signed.
    path("consent/<str:token>/confirm/", consent_page, {"purpose": "confirm"}, name="consent-confirm"),
    path("consent/<str:token>/unsubscribe/", consent_page, {"purpose": "unsubscribe"}, name="consent-unsubscribe"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("leads.api.urls")),
    path("api/v1/", include("scoring.api.urls")),
    path("api/v1/", include("routing.api.urls")),
    path("api/v1/", include("partners.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("imports.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script from a URL of its own (?script): no inline script
    # under the Content-Security-Policy; templates/drf_spectacular/swagger_ui.html drops the inline style.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
]

# A database outage raised outside a view (e.g. saving the session) is a 503, not a 500.
handler500 = "leadportal.middleware.server_error"
