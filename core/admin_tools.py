"""Admin building blocks shared by the apps' admin modules (Django only, no project app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

#: narrows a changelist queryset to one filter choice
Narrow = Callable[[QuerySet], QuerySet]


class ChoiceFilter(admin.SimpleListFilter):
    """A list filter written as a table: ``options`` maps each choice's URL value to its label
    and to the function that narrows the queryset. No choice (or an unknown one) keeps it all."""

    options: ClassVar[dict[str, tuple[str, Narrow]]] = {}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, (label, _) in self.options.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        option = self.options.get(self.value() or "")
        return option[1](queryset) if option else queryset


class ReadOnlyAdminMixin:
    """For rows only the code writes (events, check results, audit records): the admin lists
    and opens them but never adds or changes one, so what they record stays what happened."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    """Child rows shown under their parent for reference: every listed field read-only, no row
    added or deleted there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
