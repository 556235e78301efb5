from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self) -> None:
        from leads import signals

        from . import dashboard, receivers

        dashboard.register()
        # Inside the change's transaction: the pending row commits with the change (durable hand-off).
        signals.score_inputs_changed.connect(receivers.rescore_changed_leads, dispatch_uid="scoring.inputs")
