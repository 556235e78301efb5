from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from leads import signals

        from . import caches, receivers  # noqa: F401  (caches: its clear_on_change receivers)

        # Inside the change's transaction: the event and its deliveries commit with the change.
        signals.lead_saved_in_transaction.connect(receivers.on_lead_saved, dispatch_uid="webhooks.saved")
        signals.stage_changed_in_transaction.connect(receivers.on_stage_changing, dispatch_uid="webhooks.stage")
        signals.lead_erased_in_transaction.connect(receivers.on_lead_erased, dispatch_uid="webhooks.erased")
        signals.personal_data_requested.connect(receivers.personal_data, dispatch_uid="webhooks.personal_data")
