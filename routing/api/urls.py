from django.urls import path

from . import views

urlpatterns = [
    path("leads/<int:pk>/accept/", views.AcceptView.as_view(), name="lead-accept"),
    path("leads/<int:pk>/reject/", views.RejectView.as_view(), name="lead-reject"),
    path("leads/<int:pk>/assignments/", views.AssignmentsView.as_view(), name="lead-assignments"),
    path("pool/", views.PoolView.as_view(), name="pool"),
    path("pool/claim/", views.PoolClaimView.as_view(), name="pool-claim"),
    path("me/availability/", views.AvailabilityView.as_view(), name="me-availability"),
]
