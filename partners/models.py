"""Channel partner organisations. The partner portal and feedback loop build on these."""

from django.db import models


class PartnerOrganization(models.Model):
    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    territories = models.JSONField(default=list, blank=True, help_text="ISO country codes")
    products = models.JSONField(default=list, blank=True)
    capacity = models.PositiveIntegerField(default=50, help_text="Maximum open leads")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
