from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"

    def ready(self) -> None:
        from leads import signals

        from . import dashboard, receivers

        dashboard.register()
        signals.activities_recorded.connect(receivers.rescore_changed_leads, dispatch_uid="scoring.activities")
        signals.profile_changed.connect(receivers.rescore_changed_leads, dispatch_uid="scoring.profile")
        signals.lead_captured.connect(receivers.rescore_changed_leads, dispatch_uid="scoring.captured")
