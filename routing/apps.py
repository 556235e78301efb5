from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from leads import signals

        from . import dashboard, receivers

        dashboard.register()
        signals.stage_changed.connect(receivers.on_stage_changed, dispatch_uid="routing.stage")
        signals.stage_changed_in_transaction.connect(receivers.on_stage_changing, dispatch_uid="routing.stage_tx")
