"""The wiring nothing else exercises: every beat job names a task the Celery app has registered
(with arguments its function takes); test modules share helpers through factories and
conftest.py, never by importing one another; the test tiers name tests that exist."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from django.conf import settings

from leadportal.celery import app
from tests.tiers import SERIAL, SLOW

ROOT = Path(__file__).resolve().parent.parent


def registered_tasks() -> dict:
    app.loader.import_default_modules()  # what a worker does at start: autodiscover every app's tasks
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_beat_job_names_a_registered_task_and_passes_arguments_it_takes():
    tasks = registered_tasks()
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert {job: entry["task"] for job, entry in schedule.items()} == {
        "scoring-decay-daily": "scoring.tasks.decay_all",
        "routing-enforce-sla": "routing.tasks.enforce_sla",
        "routing-retry-unassigned": "routing.tasks.retry_unassigned",
        "routing-notify-sla-soon": "routing.tasks.notify_sla_soon",
        "partners-chase-feedback": "partners.tasks.chase_feedback",
        "leads-prune-sent-emails": "leads.tasks.prune_sent_emails",
        "imports-resume-stalled": "imports.tasks.import_jobs_resume",
        "loop-reconcile": "loop.tasks.reconcile_task",
        "loop-reconcile-nightly": "loop.tasks.reconcile_task",
        "webhooks-send-due": "webhooks.tasks.send_due",
        "webhooks-prune": "webhooks.tasks.prune",
    }
    unknown = sorted(entry["task"] for entry in schedule.values() if entry["task"] not in tasks)
    assert unknown == [], f"beat would send tasks no worker knows: {unknown}"
    for entry in schedule.values():
        run = inspect.signature(tasks[entry["task"]].run)
        run.bind(*entry.get("args", ()), **entry.get("kwargs", {}))  # TypeError: the task would fail every time
    assert "scoring.tasks.no_such_task" not in tasks  # the lookup can say no


def test_every_task_module_registers_under_its_first_release_names():
    """Renaming a task function must not rename the task: queued messages and beat carry the name."""
    ours = {"leads", "scoring", "routing", "partners", "loop", "webhooks", "imports"}
    names = {name for name in registered_tasks() if name.split(".")[0] in ours}
    assert {
        "scoring.tasks.rescore_leads",
        "scoring.tasks.rescore_run_step",
        "scoring.tasks.decay_all",
        "routing.tasks.enforce_sla",
        "routing.tasks.retry_unassigned",
        "routing.tasks.notify_sla_soon",
        "partners.tasks.chase_feedback",
        "loop.tasks.reconcile_task",
        "webhooks.tasks.deliver",
        "webhooks.tasks.send_due",
        "webhooks.tasks.prune",
        "imports.tasks.import_job_run",
        "imports.tasks.import_jobs_resume",
    } <= names


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .test_x import y / from . import test_x
                package = ".".join(path.relative_to(root).with_suffix("").parts[: -node.level])
                base = f"{package}.{base}" if base else package
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_no_test_module_imports_another_test_module():
    test_files = sorted(p for p in ROOT.glob("*/**/test_*.py") if ".venv" not in p.parts)
    assert len(test_files) > 40  # the glob finds the suite
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imports_of(path) if name.rsplit(".", 1)[-1].startswith("test_") and ".tests" in f".{name}"
        )
        for path in test_files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_import_check_sees_a_test_module_import(tmp_path):
    # The check above must be able to fail: an absolute and a relative import of a test module.
    probe = tmp_path / "routing" / "tests" / "test_probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from routing.tests.test_routing import team\nfrom .test_engine import PROPS\nfrom . import factories\n"
    )
    assert sorted(n for n in imports_of(probe, root=tmp_path) if n.rsplit(".", 1)[-1].startswith("test_")) == [
        "routing.tests.test_engine",
        "routing.tests.test_routing",
    ]


def test_every_tier_entry_names_a_test_file_or_test_that_exists():
    """A renamed file or test must not fall out of its tier unnoticed (into the everyday loop)."""
    missing = []
    for entry in SLOW + SERIAL:
        path, _, test = entry.partition("::")
        source = ROOT / path
        if not source.is_file() or (test and f"def {test}" not in source.read_text()):
            missing.append(entry)
    assert missing == []
    assert not set(SLOW) & set(SERIAL)
