"""The import API: preview, start, follow, and the rejected rows. Thin: the work is in imports.services."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from imports import selectors, services
from imports.models import ImportJob
from leads.api.permissions import InternalOnly
from leads.api.scopes import TokenHasScope
from leads.auth import signed_in_user
from leads.models import Scope

from .serializers import ImportJobSerializer, PreviewSerializer, UploadSerializer

FIELD_ERRORS = OpenApiResponse(description="Field errors (`{field: [message, …]}`); nothing was stored")


class CanImport(BasePermission):
    message = "Only staff, marketing and integration clients may import leads."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and selectors.can_import(request.user)


class ImportJobViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ImportJobSerializer
    permission_classes = [InternalOnly, CanImport, TokenHasScope]
    required_scope = Scope.CAPTURE
    parser_classes = [MultiPartParser, FormParser]
    http_method_names = ["get", "post", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        return selectors.imports_visible_to(signed_in_user(self.request))

    @extend_schema(summary="Your CSV imports, newest first (an integration client: its own)")
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One import: status, progress (done_rows of total_rows) and counts")
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Start a CSV import",
        description=(
            "Stores the file and imports it in the background, in batches; follow it at `/api/v1/imports/{id}/`. "
            "Each row is captured as `POST /api/v1/leads/` would (upsert by e-mail, first touch kept) or rejected "
            "with its line and the capture's field errors."
        ),
        request={"multipart/form-data": UploadSerializer},
        responses={201: ImportJobSerializer, 400: FIELD_ERRORS},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        mapping, defaults = upload.options()
        if mapping is None:
            return Response({"mapping": ["Map the file's columns (the preview suggests a mapping)."]}, status=400)
        file = upload.validated_data["file"]
        job = services.import_job_create(
            raw=file.read(),
            filename=file.name or "upload.csv",
            mapping=mapping,
            defaults=defaults,
            has_consent=upload.validated_data["has_consent"],
            actor=signed_in_user(request),
        )
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Preview a CSV import: header, suggested mapping, the first 10 rows as mapped and their errors",
        description="Changes nothing.",
        request={"multipart/form-data": UploadSerializer},
        responses={200: PreviewSerializer, 400: FIELD_ERRORS},
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        mapping, defaults = upload.options()
        answer = services.import_preview(
            raw=upload.validated_data["file"].read(),
            mapping=mapping,
            defaults=defaults,
            has_consent=upload.validated_data["has_consent"],
        )
        return Response(PreviewSerializer(answer).data)

    @extend_schema(
        summary="The rejected rows as CSV: the file's columns, then line and error",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, UTF-8 with BOM")},
    )
    @action(detail=True, methods=["get"])
    def rejected(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        job = self.get_object()
        response = StreamingHttpResponse(services.rejected_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
        return response
