"""`manage.py check_loop [--repair] [--full]`: the loop's drift, kind by kind; exit status 1 if any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loop import reconciler


class Command(BaseCommand):
    help = (
        "Count every kind of drift in the scoring → MQL → routing loop (see README, Operations). "
        "Exit status 1 when any is found. --repair repairs it (as the reconciler does every minute, and "
        "records the run); --full checks every lead's stored score instead of a sample."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repair", action="store_true", help="Repair what is found (recorded as a run)")
        parser.add_argument("--full", action="store_true", help="Check every lead's score, not a sample")
        parser.add_argument("--sample", type=int, default=None, help="Leads whose score to check (default LOOP_SAMPLE)")

    def handle(self, *args, repair: bool, full: bool, sample: int | None, **options) -> None:
        if repair:
            run = reconciler.reconcile(full=full)
            if run is None:
                raise CommandError("Another reconciler run is in progress; try again in a minute.")
            found, repaired, checked = run.found, run.repaired, run.checked_scores
            scanned = "every lead" if full else "a window of leads"
        else:
            report = reconciler.check(repair=False, full=full, sample_size=sample)
            found, repaired, checked = report.found, report.repaired, report.checked_scores
            scanned = f"leads {report.window[0]}–{report.window[1]}" if report.window else "every lead"
        width = max(len(kind.label) for kind in reconciler.ALL_KINDS)
        for kind in reconciler.ALL_KINDS:
            line = f"{kind.label:<{width}}  {kind.name:<16} {found.get(kind.name, 0):>8}"
            if repair:
                line += f"   repaired {repaired.get(kind.name, 0)}"
            self.stdout.write(line)
        self.stdout.write(f"Scanned: {scanned}. Scores checked: {checked}. Drift found: {sum(found.values())}.")
        if sum(found.values()):
            raise SystemExit(1)
