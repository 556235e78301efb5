"""What the reconciler found and repaired, run by run."""

from __future__ import annotations

from django.db import models


class LoopRun(models.Model):
    """One run of the reconciler (loop.reconciler.reconcile): per kind of drift, how many cases it
    found and how many it repaired. `sample_cursor` is where its walk over the leads' stored scores
    stopped; the next run goes on from there."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    full = models.BooleanField(
        "every score checked", default=False, help_text="Checked every lead's score (the nightly run)"
    )
    repair = models.BooleanField(default=True)
    found = models.JSONField(default=dict)
    repaired = models.JSONField(default=dict)
    checked_scores = models.PositiveIntegerField(default=0)
    sample_cursor = models.BigIntegerField(default=0)
    window_cursor = models.BigIntegerField(default=0, help_text="Where the next run's window of leads starts")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = "reconciler run"
        indexes = [models.Index(fields=["-started_at"], name="looprun_recent")]

    def __str__(self) -> str:
        return f"Reconciler run {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def total_found(self) -> int:
        return sum(self.found.values())

    @property
    def total_repaired(self) -> int:
        return sum(self.repaired.values())
