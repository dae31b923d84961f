"""Delete a reference's or consent's files once its row is gone (also on cascades).

Files are removed only after the transaction commits: a rolled-back delete keeps both the row
and its files.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from core.files import delete_quietly

from .models import Consent, FaceReference


@receiver(post_delete, sender=FaceReference, dispatch_uid="facelibrary-reference-files")
def _delete_reference_files(sender, instance: FaceReference, **kwargs) -> None:
    names = [f.name for f in (instance.image, instance.thumbnail) if f]
    transaction.on_commit(lambda: delete_quietly(names))


@receiver(post_delete, sender=Consent, dispatch_uid="facelibrary-consent-files")
def _delete_consent_document(sender, instance: Consent, **kwargs) -> None:
    if instance.document:
        name = instance.document.name
        transaction.on_commit(lambda: delete_quietly([name]))
