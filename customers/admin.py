from __future__ import annotations

from django.contrib import admin

from customers.models import Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["tenant_id", "name", "kind", "first_seen_at"]
    list_filter = ["kind"]
    search_fields = ["tenant_id", "name"]
    readonly_fields = ["first_seen_at"]
