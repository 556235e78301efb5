from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _change_triggers_reinstall(using: str = "default", **kwargs) -> None:
    """SQLite rebuilds a table without its triggers when a migration alters it; put the changes
    feed's back (leads.sql.change_triggers_install, idempotent). PostgreSQL keeps them."""
    from django.db import connections

    from leads import sql

    conn = connections[using]
    if conn.vendor == "sqlite" and "leads_leadtombstone" in conn.introspection.table_names():
        sql.change_triggers_install(using)


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads"

    def ready(self) -> None:
        post_migrate.connect(_change_triggers_reinstall, sender=self, dispatch_uid="leads_change_triggers")
