from django.contrib import admin

from .models import PartnerOrganization


@admin.register(PartnerOrganization)
class PartnerOrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "capacity", "created_at"]
    list_filter = ["active"]
    search_fields = ["name"]
