from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImportsConfig(AppConfig):
    name = "imports"
    verbose_name = _("Imports")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from leads import signals

        from . import services

        signals.lead_erased_in_transaction.connect(services.on_lead_erased, dispatch_uid="imports.erased")
