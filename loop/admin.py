"""The "Loop health" page: today's drift, kind by kind, and what the reconciler found and repaired."""

from __future__ import annotations

from django.contrib import admin

from leads.admin import RecordAdmin

from . import reconciler
from .models import LoopRun


@admin.register(LoopRun)
class LoopRunAdmin(RecordAdmin):
    change_list_template = "admin/loop/looprun/change_list.html"
    list_display = ("started_at", "kind_of_run", "drift_found", "drift_repaired", "checked_scores", "duration")
    list_filter = (("full", admin.BooleanFieldListFilter),)
    date_hierarchy = "started_at"
    actions = None

    @admin.display(description="Run")
    def kind_of_run(self, run: LoopRun) -> str:
        return "Nightly (every score)" if run.full else "Regular (a sample of scores)"

    @admin.display(description="Drift found")
    def drift_found(self, run: LoopRun) -> int:
        return run.total_found

    @admin.display(description="Repaired")
    def drift_repaired(self, run: LoopRun) -> int:
        return run.total_repaired

    @admin.display(description="Took")
    def duration(self, run: LoopRun) -> str:
        return f"{run.duration_ms / 1000:.1f} s" if run.duration_ms >= 1000 else f"{run.duration_ms} ms"

    def changelist_view(self, request, extra_context=None):
        report = reconciler.check(repair=False)
        last = LoopRun.objects.first()
        rows = [
            {
                "label": kind.label,
                "meaning": kind.meaning,
                "now": report.found.get(kind.name, 0),
                "last_found": last.found.get(kind.name, 0) if last else None,
                "last_repaired": last.repaired.get(kind.name, 0) if last else None,
            }
            for kind in reconciler.ALL_KINDS
        ]
        context = {
            "title": "Loop health",
            "health_rows": rows,
            "health_drift": report.drift,
            "health_checked": report.checked_scores,
            "last_run": last,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)
