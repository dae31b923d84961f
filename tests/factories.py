"""factory_boy factories for the core models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.roles import SELLERS
from facelibrary.models import Consent, Face
from seller.models import Category, Seller, Shoot


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-Word-123")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            for name in extracted:
                self.groups.add(Group.objects.get_or_create(name=name)[0])
        if create:
            self.save()


class SellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Seller

    user = factory.SubFactory(UserFactory, groups=[SELLERS])
    store_name = factory.Sequence(lambda n: f"Store {n}")
    catalog_seller_id = factory.Sequence(lambda n: f"cat-{n:05d}")


class ShootFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shoot

    seller = factory.SubFactory(SellerFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    title = factory.Sequence(lambda n: f"Summer dress {n}")
    category = Category.DRESS


class FaceFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"F{n:04d}")
    status = Face.Status.ACTIVE

    class Meta:
        model = Face
        skip_postgeneration_save = True

    @factory.post_generation
    def consent(self, create, extracted, **kwargs):
        """An active face comes with a consent in force (generation checks it when the face is
        used); ``consent=False`` leaves it without one."""
        if create and extracted is not False and self.status == Face.Status.ACTIVE:
            Consent.objects.create(face=self, licence_terms="Test release: images and video.")


def shoot_in_status(status: str, **kwargs) -> Shoot:
    """A shoot placed directly in ``status`` (test set-up only; code uses services)."""
    shoot = ShootFactory(**kwargs)
    Shoot.objects.filter(pk=shoot.pk).update(status=status)
    shoot.refresh_from_db()
    return shoot
