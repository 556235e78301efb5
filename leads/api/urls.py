from django.urls import path
from rest_framework.routers import DefaultRouter

from .changes import LeadChangesView
from .views import EventsView, LeadViewSet

router = DefaultRouter()
router.register("leads", LeadViewSet, basename="lead")

urlpatterns = [
    path("events/", EventsView.as_view(), name="events"),
    # before the router's leads/<pk>/, which would otherwise take "changes" for a lead's id
    path("leads/changes/", LeadChangesView.as_view(), name="lead-changes"),
    *router.urls,
]
