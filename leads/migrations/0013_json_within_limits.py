"""Values stored before attributes and event properties were bounded (leads.limits) are cut back to
the limits, so no page or answer has to render them: a 924-level attribute made the admin's lead page
a 500, a 9.9 MB one made every read of the lead slow. Only the offending top-level keys change; each
keeps its key with a note of what was removed, the rest of the object stays as it was.

On PostgreSQL the candidates are found in SQL (jsonb_path_exists for anything eight levels down, or
more than the size limit as text), so a million leads are not loaded to find a handful."""

from django.db import migrations

# As leads.limits when this was written (a migration keeps its own copy).
MAX_JSON_DEPTH = 8
MAX_JSON_BYTES = 64 * 1024


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _trimmed(value):
    """`value` with every top-level key over the limits replaced by a note; None if nothing was."""
    import json

    if not isinstance(value, dict):
        return None
    changed, out = False, {}
    for key, item in value.items():
        if _depth({key: item}) > MAX_JSON_DEPTH:
            out[key], changed = f"(removed: nested deeper than {MAX_JSON_DEPTH} levels)", True
        elif len(json.dumps(item, ensure_ascii=False)) > MAX_JSON_BYTES:
            out[key], changed = f"(removed: larger than {MAX_JSON_BYTES // 1024} KB)", True
        else:
            out[key] = item
    return out if changed else None


# The rows that may be over a limit: anything eight levels below the top, or more than the size as text.
CANDIDATES = {
    "Lead": "SELECT id FROM leads_lead WHERE jsonb_path_exists(attributes, %s) OR octet_length(attributes::text) > %s",
    "Activity": (
        "SELECT id FROM leads_activity WHERE jsonb_path_exists(properties, %s) OR octet_length(properties::text) > %s"
    ),
}


def _candidates(model, field: str, connection):
    rows = model.objects.only("pk", field)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(CANDIDATES[model.__name__], [f"strict $.**{{{MAX_JSON_DEPTH}}}", MAX_JSON_BYTES])
            rows = rows.filter(pk__in=[pk for (pk,) in cursor.fetchall()])
    return rows.iterator(chunk_size=500)


def trim(apps, schema_editor):
    connection = schema_editor.connection
    for model_name, field in (("Lead", "attributes"), ("Activity", "properties")):
        model = apps.get_model("leads", model_name)
        for row in _candidates(model, field, connection):
            if (fixed := _trimmed(getattr(row, field))) is not None:
                model.objects.filter(pk=row.pk).update(**{field: fixed})


class Migration(migrations.Migration):
    dependencies = [("leads", "0012_apitoken_from_authtoken")]

    operations = [migrations.RunPython(trim, migrations.RunPython.noop, elidable=True)]
