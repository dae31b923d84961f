"""Catalog clients, their tokens (shown once, revocable), events and webhook deliveries."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from core.admin_tools import ReadOnlyAdminMixin, ReadOnlyTabularInline

from .models import (
    CatalogClient,
    CatalogEvent,
    ClientToken,
    Publication,
    Scope,
    WebhookAttempt,
    WebhookDelivery,
)
from .services import client_token_create, client_token_revoke, webhook_delivery_retry


class ClientTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ]
    )

    class Meta:
        model = ClientToken
        fields = ("client", "name", "scopes")


class ClientTokenInline(ReadOnlyTabularInline):
    """Tokens are made on the token page, where the secret can be shown once."""

    model = ClientToken
    fields = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    show_change_link = True


@admin.register(CatalogClient)
class CatalogClientAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "all_sellers", "webhook_url", "created_at")
    list_filter = ("is_active", "all_sellers")
    search_fields = ("name",)
    filter_horizontal = ("sellers",)
    inlines = [ClientTokenInline]


@admin.register(ClientToken)
class ClientTokenAdmin(admin.ModelAdmin):
    form = ClientTokenForm
    list_display = ("prefix", "name", "client", "scopes", "created_at", "last_used_at", "revoked")
    list_filter = ("client", ("revoked_at", admin.EmptyFieldListFilter))
    actions = ("revoke_selected",)

    @admin.display(boolean=True, description="revoked")
    def revoked(self, token: ClientToken) -> bool:
        return token.is_revoked

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("client", "name", "scopes", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return  # a token is immutable; revoke it and make a new one
        token, raw = client_token_create(
            client=form.cleaned_data["client"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"Token for {token.client}: {raw}  (copy it now; it is not stored and will not be "
            "shown again)",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request, queryset) -> None:
        revoked = sum(client_token_revoke(token=token) for token in queryset)
        self.message_user(request, f"{revoked} token(s) revoked.")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit trail keeps who had access


class WebhookAttemptInline(ReadOnlyTabularInline):
    model = WebhookAttempt
    fields = ("number", "ok", "status_code", "error", "duration_ms", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event",
        "client",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    list_filter = ("status", "client")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ("retry_now",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset) -> None:
        retried = sum(webhook_delivery_retry(delivery=d) for d in queryset)
        self.message_user(request, f"{retried} delivery(ies) re-queued.")


@admin.register(CatalogEvent)
class CatalogEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "type", "seller", "shoot", "asset", "created_at")
    list_filter = ("type",)
    readonly_fields = [f.name for f in CatalogEvent._meta.fields]


@admin.register(Publication)
class PublicationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("asset", "client", "external_id", "created_at")
    list_filter = ("client",)
