from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Channel partners"

    def ready(self) -> None:
        from leads import signals
        from routing.selectors import register_partner_weights

        from . import dashboard, receivers, selectors

        dashboard.register()
        register_partner_weights(selectors.partner_weights)
        signals.lead_erased_in_transaction.connect(receivers.on_lead_erased, dispatch_uid="partners.erased")
        signals.personal_data_requested.connect(receivers.personal_data, dispatch_uid="partners.personal_data")
