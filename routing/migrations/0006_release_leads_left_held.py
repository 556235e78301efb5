"""Leads that earlier doors left half handed over: back with marketing (mal, new) or disqualified, yet
still owned, suppressed or on a deadline (the API's recycle kept them so), and closed deals still
on a deadline. They get the state routing.handover gives such a lead now."""

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

HOLDING = ["active", "pooled", "unassigned", "accepted"]


def release(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    Assignment = apps.get_model("routing", "Assignment")
    held = Lead.objects.filter(stage__in=["new", "mal", "disqualified"]).filter(
        Q(owner__isnull=False)
        | Q(partner__isnull=False)
        | Q(marketing_suppressed=True)
        | Q(handed_over_at__isnull=False)
        | Q(respond_by__isnull=False)
    )
    ids = list(held.values_list("pk", flat=True))
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        Assignment.objects.filter(lead_id__in=chunk, status__in=HOLDING).update(
            status="closed", ended_at=timezone.now(), note="released: the lead was back with marketing"
        )
        Lead.objects.filter(pk__in=chunk).update(
            owner=None, partner=None, marketing_suppressed=False, handed_over_at=None, respond_by=None
        )
    Lead.objects.filter(stage__in=["won", "lost"], respond_by__isnull=False).update(respond_by=None)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0005_handover_pools_fallback"),
        ("leads", "0010_lead_latest_touch"),
    ]

    operations = [migrations.RunPython(release, migrations.RunPython.noop)]
