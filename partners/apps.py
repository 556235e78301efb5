from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Channel partners"

    def ready(self) -> None:
        from routing.selectors import register_partner_weights

        from . import dashboard, selectors

        dashboard.register()
        register_partner_weights(selectors.partner_weights)
