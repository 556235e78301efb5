from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from leads import mail, signals

        from . import dashboard, receivers
        from .services import notify

        dashboard.register()
        mail.on_sent(notify.ASSIGNMENT_NOTIFIED, notify.assignment_notified)
        signals.stage_changed.connect(receivers.on_stage_changed, dispatch_uid="routing.stage")
        signals.stage_changed_in_transaction.connect(receivers.on_stage_changing, dispatch_uid="routing.stage_tx")
        signals.lead_erased_in_transaction.connect(receivers.on_lead_erased, dispatch_uid="routing.erased")
        signals.personal_data_requested.connect(receivers.personal_data, dispatch_uid="routing.personal_data")
        signals.handover_forecast_requested.connect(receivers.handover_forecast, dispatch_uid="routing.forecast")
