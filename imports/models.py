"""A CSV import: the file, how its columns map to lead fields, and its progress and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """One uploaded CSV and its import into leads, in batches.

    The file's text is kept here, in the database, not under MEDIA_ROOT: the web process that
    receives it and the worker that imports it share the database and nothing else (docker-compose
    runs them in separate containers without a common volume), a job and its file go together (no
    orphaned files, one backup), and the limits (IMPORT_MAX_BYTES) keep it small. It is decoded to
    UTF-8 on upload (`encoding` and `delimiter` say how it was read).

    `done_rows` is the cursor: the data rows done, committed with each batch's leads, so a worker
    that dies redoes at most one batch — which is an upsert by e-mail, so redoing it doubles
    nothing. `heartbeat_at` moves with each batch; a running job whose heartbeat is older than
    IMPORT_STALE_AFTER is picked up again (imports.tasks.import_jobs_resume_task).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Uploaded, not started")  # the admin's mapping step
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    filename = models.CharField(_("file name"), max_length=255)
    text = models.TextField(_("file content"), help_text=_("The CSV as uploaded, decoded to UTF-8"))
    encoding = models.CharField(max_length=20)
    delimiter = models.CharField(max_length=1)
    header = models.JSONField(default=list)
    mapping = models.JSONField(
        _("mapping"), default=dict, help_text=_('Column → field, "attributes.<key>" or "" (skip)')
    )
    defaults = models.JSONField(_("defaults"), default=dict, blank=True)
    has_consent = models.BooleanField(
        _("the people on this list opted in"),
        default=False,
        help_text=_("New leads without consent are sent the double opt-in e-mail; only their click confirms it."),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    done_rows = models.PositiveIntegerField(_("rows done"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    rejected_count = models.PositiveIntegerField(_("rejected"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, help_text="The run (task id) importing it")

    class Meta:
        ordering = ["-pk"]
        verbose_name = _("CSV import")
        verbose_name_plural = _("CSV imports")
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="imports_job_status_beat")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.done_rows}/{self.total_rows})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def rate(self) -> float | None:
        """Rows per second so far."""
        if not self.started_at or not self.done_rows:
            return None
        seconds = ((self.finished_at or self.heartbeat_at or self.started_at) - self.started_at).total_seconds()
        return self.done_rows / seconds if seconds > 0 else None


class ImportRejection(models.Model):
    """A row that was not imported: its file line, its values and why (the rejected-rows file).
    Written in its batch's transaction, so a batch that is redone writes them once."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rejections")
    line = models.PositiveIntegerField()
    values = models.JSONField(default=list)
    errors = models.JSONField(default=dict, help_text="field → messages")

    class Meta:
        ordering = ["job", "line"]
        constraints = [models.UniqueConstraint(fields=["job", "line"], name="imports_rejection_once_per_line")]

    def __str__(self) -> str:
        return f"line {self.line}"


class SavedMapping(models.Model):
    """A mapping and defaults kept under a name, to import the next file of the same kind."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    mapping = models.JSONField(_("mapping"), default=dict)
    defaults = models.JSONField(_("defaults"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("saved mapping")
        verbose_name_plural = _("saved mappings")

    def __str__(self) -> str:
        return self.name
