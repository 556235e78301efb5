"""Leads → Import a CSV: upload, map the columns (suggested, or a saved mapping), preview, start,
follow the progress (htmx, no inline script), download the rejected rows. For marketing managers
and administrators (imports.selectors.can_import); the writes go through imports.services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from leads.auth import signed_in_user
from leads.models import User

from . import selectors, services
from .forms import MappingForm, UploadForm
from .models import ImportJob, SavedMapping


@admin.register(SavedMapping)
class SavedMappingAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = signed_in_user(request)
        super().save_model(request, obj, form, change)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "filename",
        "status",
        "progress",
        "created_count",
        "updated_count",
        "rejected_count",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    exclude = ["text", "claimed_by"]
    change_list_template = "admin/imports/importjob/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ImportJob._meta.fields if f.name not in ("text", "claimed_by")]

    def has_add_permission(self, request) -> bool:
        return False  # through "Import a CSV" (the upload view)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # Asked for anyone, the admin's sign-in page included (its app list): an anonymous visitor may not.
    def has_view_permission(self, request, obj=None) -> bool:
        return isinstance(request.user, User) and selectors.can_import(request.user)

    def has_module_permission(self, request) -> bool:
        return isinstance(request.user, User) and selectors.can_import(request.user)

    @admin.display(description=_("Progress"))
    def progress(self, job: ImportJob) -> str:
        return format_html(
            '<a href="{}">{} / {}</a>', reverse("admin:imports_progress", args=[job.pk]), job.done_rows, job.total_rows
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="imports_upload"),
            path("<int:pk>/mapping/", view(self.mapping_view), name="imports_mapping"),
            path("<int:pk>/progress/", view(self.progress_view), name="imports_progress"),
            path("<int:pk>/rejected/", view(self.rejected_view), name="imports_rejected"),
            *super().get_urls(),
        ]

    def _check(self, request: HttpRequest) -> None:
        if not selectors.can_import(signed_in_user(request)):
            raise PermissionDenied

    def _context(self, request: HttpRequest, title: str, **extra):
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def upload_view(self, request: HttpRequest):
        self._check(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            saved = form.cleaned_data["saved_mapping"]
            try:
                file = form.cleaned_data["file"]
                job = services.import_draft_create(
                    raw=file.read(),
                    filename=file.name or "upload.csv",
                    actor=signed_in_user(request),
                    mapping=saved.mapping if saved else None,
                    defaults=saved.defaults if saved else None,
                )
            except services.ImportInvalid as exc:
                for message in exc.field_errors().get("file", [exc.message]):
                    form.add_error("file", message)
            else:
                return HttpResponseRedirect(reverse("admin:imports_mapping", args=[job.pk]))
        return TemplateResponse(
            request, "admin/imports/upload.html", self._context(request, _("Import a CSV"), form=form)
        )

    def mapping_view(self, request: HttpRequest, pk: int):
        self._check(request)
        job = get_object_or_404(selectors.imports_visible_to(signed_in_user(request)), pk=pk)
        if job.status != ImportJob.Status.DRAFT:
            return HttpResponseRedirect(reverse("admin:imports_progress", args=[job.pk]))
        initial = MappingForm.initial_for(job.header, job.mapping, job.defaults, job.has_consent)
        form = MappingForm(request.POST or None, header=job.header, initial=initial)
        mapping, defaults, has_consent = job.mapping, job.defaults, job.has_consent
        problems: list[str] = []
        if request.method == "POST" and form.is_valid():
            mapping, defaults, has_consent = form.mapping(), form.defaults(), form.cleaned_data["has_consent"]
            if "start" in request.POST:
                try:
                    job = services.import_job_start(
                        job=job, mapping=mapping, defaults=defaults, has_consent=has_consent
                    )
                except services.ImportInvalid as exc:
                    problems = [m for messages_ in exc.field_errors().values() for m in messages_]
                else:
                    if name := form.cleaned_data["save_as"].strip():
                        SavedMapping.objects.update_or_create(
                            name=name,
                            defaults={"mapping": mapping, "defaults": defaults, "created_by": signed_in_user(request)},
                        )
                    self.message_user(request, _("The import has started."), messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:imports_progress", args=[job.pk]))
        preview = None
        try:
            preview = services.preview_of(
                services.parsed_of(job), job.total_rows, mapping=mapping, defaults=defaults, has_consent=has_consent
            )
        except services.ImportInvalid as exc:
            problems = problems or [m for messages_ in exc.field_errors().values() for m in messages_]
        context = self._context(
            request,
            _("Map the columns of %(file)s") % {"file": job.filename},
            job=job,
            form=form,
            preview=preview,
            problems=problems,
        )
        return TemplateResponse(request, "admin/imports/mapping.html", context)

    def progress_view(self, request: HttpRequest, pk: int):
        self._check(request)
        job = get_object_or_404(selectors.imports_visible_to(signed_in_user(request)), pk=pk)
        context = self._context(request, _("Import of %(file)s") % {"file": job.filename}, job=job)
        if request.headers.get("HX-Request"):
            return TemplateResponse(request, "admin/imports/_progress.html", context)
        return TemplateResponse(request, "admin/imports/progress.html", context)

    def rejected_view(self, request: HttpRequest, pk: int):
        self._check(request)
        job = get_object_or_404(selectors.imports_visible_to(signed_in_user(request)), pk=pk)
        response = StreamingHttpResponse(services.rejected_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
        return response
