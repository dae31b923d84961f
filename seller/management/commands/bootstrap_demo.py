"""Create (once) an admin user and a demo seller for a local run, and print their credentials."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.roles import ensure_groups
from seller.accounts import seller_create


class Command(BaseCommand):
    help = "Create the admin user and a demo seller if they do not exist, and print credentials."

    def handle(self, *args, **options) -> None:
        ensure_groups()
        users = get_user_model().objects
        lines = []
        if not users.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@example.com", password)
            lines.append(f"admin user:  admin / {password}   (http://127.0.0.1:8000/admin/)")
        if not users.filter(username="demo-seller").exists():
            password = secrets.token_urlsafe(12)
            seller_create(
                username="demo-seller",
                password=password,
                store_name="Demo Boutique",
                catalog_seller_id="demo-0001",
            )
            lines.append(f"demo seller: demo-seller / {password}   (http://127.0.0.1:8000/)")
        if not lines:
            lines.append(
                "admin and demo-seller already exist (passwords were printed on first run;"
            )
            lines.append("reset with: python manage.py changepassword admin)")
        self.stdout.write("\n".join(lines))
