from django.contrib import admin

from .models import Seller, Shoot, ShootEvent, ShootPhoto


@admin.register(Seller)
class SellerAdmin(admin.ModelAdmin):
    list_display = ("store_name", "user", "catalog_seller_id", "created_at")
    search_fields = ("store_name", "user__username", "catalog_seller_id")


class ShootEventInline(admin.TabularInline):
    model = ShootEvent
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "from_status", "to_status", "actor", "note")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ShootPhotoInline(admin.TabularInline):
    model = ShootPhoto
    extra = 0
    readonly_fields = ("image", "width", "height", "original_name", "sha256")


@admin.register(Shoot)
class ShootAdmin(admin.ModelAdmin):
    """Status is read-only here: it changes only through services (and their audit trail)."""

    list_display = ("sku", "title", "seller", "category", "status", "status_changed_at")
    list_filter = ("status", "category", "scene")
    search_fields = ("sku", "title", "seller__store_name")
    readonly_fields = (
        "status",
        "status_changed_at",
        "analysis_attempts",
        "analysis_job_id",
        "last_error",
    )
    inlines = [ShootPhotoInline, ShootEventInline]
