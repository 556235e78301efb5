"""The rep dashboard's own pages, mounted under /app/ (routing adds pool, team and accept/reject)."""

from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue/", views.my_queue, name="my-queue"),
    path("leads/", views.lead_list, name="list"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/badge/", views.notification_badge, name="notification-badge"),
    path("leads/<int:pk>/", views.lead_detail, name="lead"),
    *(
        path(f"leads/<int:pk>/{action}/", views.lead_action, {"action": action}, name=f"lead-{action}")
        for action in views.ACTIONS
    ),
]
