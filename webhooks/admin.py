"""Webhooks in the admin, without JSON: a subscription's event types are checkboxes, its filter is
the condition rows routing and scoring rules use (field, operator, value; all must hold). The
secret is generated when left empty and shown once, in the message after saving. Deliveries are a
read-only list (filter by subscription, status, event type) with a replay action; subscriptions
show their pause and its reason, with a resume action. Writes go through webhooks.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from leads.auth import signed_in_user

from . import guard, services
from .models import EventType, WebhookDelivery, WebhookFilterCondition, WebhookSubscription


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="http:// or https://, a public address")
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    new_secret = forms.CharField(
        required=False,
        min_length=16,
        max_length=100,
        label="Secret",
        help_text="Leave empty: a new subscription gets a generated secret, shown once after saving; "
        "an existing one keeps its own. Type one to replace it.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "events", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            guard.check_url(url)
        except guard.Refused as refused:
            raise forms.ValidationError(str(refused)) from None
        return url

    def clean_events(self) -> list[str]:
        wanted = set(self.cleaned_data["events"])
        return [t for t in EventType.values if t in wanted]


class ConditionInline(admin.TabularInline):
    model = WebhookFilterCondition
    fields = ["field", "operator", "value"]
    extra = 0
    verbose_name = "filter condition (all must hold)"


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    inlines = [ConditionInline]
    list_display = ["name", "url", "active", "state", "paused_reason", "consecutive_failures", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    readonly_fields = ["paused_at", "paused_reason", "consecutive_failures", "created_by", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "url", "events", "active", "new_secret"]}),
        ("Pause", {"fields": ["paused_at", "paused_reason", "consecutive_failures"]}),
        ("Record", {"fields": ["created_by", "created_at"]}),
    ]
    actions = ["resume"]

    @admin.display(description="State")
    def state(self, obj: WebhookSubscription) -> str:
        if not obj.active:
            return "inactive"
        return "paused" if obj.paused else "sending"

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form, change: bool) -> None:
        secret = form.cleaned_data.get("new_secret") or ""
        if secret:
            obj.secret = secret
        if not change:
            obj.created_by = signed_in_user(request)
        super().save_model(request, obj, form, change)
        if not change and not secret:
            self.message_user(
                request,
                f"The secret of “{obj.name}” is {obj.secret} — copy it now, it is not shown again.",
                messages.WARNING,
            )

    @admin.action(description="Resume selected subscriptions (their waiting deliveries go out)")
    def resume(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        count = 0
        for subscription in queryset.filter(paused_at__isnull=False):
            services.subscription_resume(subscription=subscription, actor=signed_in_user(request))
            count += 1
        self.message_user(request, f"{count} subscription(s) resumed.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "subscription",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "response_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "subscription", "event__type"]
    list_select_related = ["subscription", "event"]
    search_fields = ["event__id"]
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Event type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.action(description="Replay selected deliveries (same event id, due now)", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            services.delivery_replay(delivery=delivery, actor=signed_in_user(request))
            count += 1
        self.message_user(request, f"{count} deliveries queued again.", messages.SUCCESS)
