"""The partner portal's navigation, registered through leads.dashboard like the other apps'."""

from leads import dashboard
from leads.models import Role


def register() -> None:
    dashboard.register_nav("Our leads", "partners:leads", roles=[Role.PARTNER], order=10)
    dashboard.register_nav("Feedback & figures", "partners:history", roles=[Role.PARTNER], order=20)
