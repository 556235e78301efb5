"""DRF's authtoken keys become ApiTokens, hashed, so existing clients keep working; then the plain
keys go: the authtoken_token table is dropped (rest_framework.authtoken is no longer installed) and
its migration records with it, so installing that app again would start clean."""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

# As leads.tokens.ROLE_SCOPES when this was written (a migration keeps its own copy).
ROLE_SCOPES = {
    "integration": "capture",
    "marketing": "capture read work",
    "sales_manager": "read work",
    "sales_rep": "read work",
    "partner": "partner",
}
STAFF_SCOPES = "capture read work"


def hash_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return  # a database that never had DRF's tokens
    User = apps.get_model("leads", "User")
    ApiToken = apps.get_model("leads", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
    users = User.objects.in_bulk([user_id for _, user_id in rows])
    days = settings.API_TOKEN_DEFAULT_DAYS
    expires_at = timezone.now() + timedelta(days=days) if days else None
    migrated = []
    for key, user_id in rows:
        user = users[user_id]
        scopes = ROLE_SCOPES.get(user.role) or (STAFF_SCOPES if user.is_staff or user.is_superuser else "")
        if not scopes:
            continue  # a user without a role could do nothing with the API; its token goes
        migrated.append(
            ApiToken(
                user=user,
                name="DRF token (migrated)",
                prefix=key[:8],
                digest=hashlib.sha256(key.encode()).hexdigest(),
                scopes=scopes,
                expires_at=expires_at,
            )
        )
    ApiToken.objects.bulk_create(migrated)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE authtoken_token")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("leads", "0011_apitoken")]

    # Not reversible in substance: the plain keys are gone by design.
    operations = [migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop)]
