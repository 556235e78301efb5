"""The partner portal, mounted at /partner/."""

from django.urls import path

from . import views

app_name = "partners"

urlpatterns = [
    path("", views.lead_list, name="leads"),
    path("leads/<int:pk>/", views.lead_detail, name="lead"),
    path("leads/<int:pk>/accept/", views.accept, name="accept"),
    path("leads/<int:pk>/decline/", views.decline, name="decline"),
    path("leads/<int:pk>/feedback/", views.feedback, name="feedback"),
    path("feedback/", views.history, name="history"),
]
