"""The two auth views with limits of their own; the rest of django.contrib.auth.urls stays as it is
(leadportal/urls.py includes this first, under the same names)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
]
