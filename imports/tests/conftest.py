import pytest


@pytest.fixture
def upload():
    """`upload(text_or_bytes, name)` → a file for the multipart API."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    def make(content, name="leads.csv"):
        raw = content.encode("utf-8") if isinstance(content, str) else content
        return SimpleUploadedFile(name, raw, content_type="text/csv")

    return make
