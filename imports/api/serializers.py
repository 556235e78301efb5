"""Input and output shapes of the import API (multipart upload; JSON answers)."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from imports.models import ImportJob, SavedMapping


@extend_schema_field({"type": "string", "description": "A JSON object, as text (a multipart form's field)"})
class JSONObjectField(serializers.Field):
    """An object sent as a JSON text (a multipart form's field) or, in a JSON body, as an object."""

    default_error_messages = {"invalid": 'Send a JSON object, e.g. {{"E-Mail": "email"}}.'}

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The CSV: a header row, then one lead per row (`,` `;` or tab)")
    mapping = JSONObjectField(
        required=False,
        help_text='Column → lead field, "attributes.<key>" or "" (skip). Preview: the suggestion if left out.',
    )
    saved_mapping = serializers.PrimaryKeyRelatedField(
        queryset=SavedMapping.objects.all(), required=False, help_text="A saved mapping's id (its defaults too)"
    )
    defaults = JSONObjectField(required=False, help_text='For rows without their own, e.g. {"source": "fair"}')
    has_consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "The list owner states the people opted in elsewhere: new leads without consent are sent the "
            "double opt-in e-mail; their click confirms it. False: they stay without consent."
        ),
    )

    def options(self) -> tuple[Any, dict]:
        data = self.validated_data
        saved = data.get("saved_mapping")
        mapping = data.get("mapping", saved.mapping if saved else None)
        defaults = data.get("defaults", saved.defaults if saved else {})
        return mapping, defaults


class PreviewRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    values = serializers.ListField(child=serializers.CharField(allow_blank=True), help_text="The row as in the file")

    def get_fields(self):
        fields = super().get_fields()
        # Names a Serializer has as attributes of its own, so declared here.
        fields["data"] = serializers.DictField(help_text="The row as capture data, as mapped (with the defaults)")
        fields["errors"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Field → messages, as the capture API answers them; empty: the row is fine",
        )
        return fields


class PreviewSerializer(serializers.Serializer):
    encoding = serializers.CharField()
    delimiter = serializers.CharField()
    header = serializers.ListField(child=serializers.CharField())
    suggested_mapping = serializers.DictField(child=serializers.CharField(allow_blank=True))
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True))
    total_rows = serializers.IntegerField()
    has_consent = serializers.BooleanField()
    rows = PreviewRowSerializer(many=True)


class ImportJobSerializer(serializers.ModelSerializer):
    rejected_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "filename",
            "status",
            "total_rows",
            "done_rows",
            "created_count",
            "updated_count",
            "rejected_count",
            "mapping",
            "defaults",
            "has_consent",
            "encoding",
            "delimiter",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "rejected_url",
        ]
        read_only_fields = fields

    def get_rejected_url(self, job: ImportJob) -> str:
        return f"/api/v1/imports/{job.pk}/rejected/"
