"""Form fields shared by the admin screens of several apps."""

from __future__ import annotations

from django import forms


class ListField(forms.CharField):
    """A JSON list of strings edited as comma-separated text ("DE, AT, CH"), so nobody edits JSON."""

    def __init__(self, *args, upper: bool = False, **kwargs):
        self.upper = upper
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated")
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list | tuple):
            items = [str(v) for v in value]
        else:
            items = (super().to_python(value) or "").split(",")
        items = [i.strip() for i in items if i.strip()]
        return [i.upper() for i in items] if self.upper else items
