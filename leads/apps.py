from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _change_triggers_refresh(using: str = "default", **kwargs) -> None:
    """The changes feed's update trigger compares the lead's columns by name, and SQLite rebuilds a
    table without its triggers when a migration alters it: after every migrate, the triggers as the
    table is now (leads.sql.change_triggers_refresh, idempotent)."""
    from django.db import connections

    from leads import sql

    conn = connections[using]
    if conn.vendor in ("postgresql", "sqlite") and "leads_leadchange" in conn.introspection.table_names():
        sql.change_triggers_refresh(using)


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        post_migrate.connect(_change_triggers_refresh, sender=self, dispatch_uid="leads_change_triggers")
        from . import dashboard
        from .models import Role

        # Marketing's own pages of the dashboard (the rest of the navigation comes from routing).
        dashboard.register_nav("Leads", "leads:list", roles=[Role.MARKETING], order=15)
