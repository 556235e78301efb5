from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import EventsView, LeadViewSet

router = DefaultRouter()
router.register("leads", LeadViewSet, basename="lead")

urlpatterns = [
    path("events/", EventsView.as_view(), name="events"),
    *router.urls,
]
