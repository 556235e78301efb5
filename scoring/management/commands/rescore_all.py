"""`manage.py rescore_all`: rescore every lead with the active model, as activating it does."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scoring import selectors, services
from scoring.models import RescoreRun


class Command(BaseCommand):
    help = (
        "Start a full rescoring run with the active scoring model (the workers do it in batches; a running "
        "run is superseded). Follow it in the admin (Scoring → Rescore runs) or with check_loop."
    )

    def handle(self, *args, **options) -> None:
        model = selectors.active_model()
        if model is None:
            raise CommandError("No scoring model is active: activate one in the admin first.")
        run = services.rescore_run_start(model=model, kind=RescoreRun.Kind.MANUAL)
        self.stdout.write(f"Rescoring run {run.pk} started: {run.total} leads with model v{model.pk} ({model.name}).")
