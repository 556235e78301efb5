"""Routing's dashboard pages, mounted under /app/ next to the leads app's."""

from django.urls import path

from . import views

app_name = "routing"

urlpatterns = [
    path("leads/<int:pk>/accept/", views.accept, name="accept"),
    path("leads/<int:pk>/reject/", views.reject, name="reject"),
    path("leads/<int:pk>/reassign/", views.reassign, name="reassign"),
    path("pool/", views.pool, name="pool"),
    path("pool/claim/", views.claim, name="claim"),
    path("availability/", views.availability, name="availability"),
    path("team/", views.team, name="team"),
    path("team/bulk/", views.team_bulk, name="team-bulk"),
    path("team/funnel/", views.funnel, name="funnel"),
]
