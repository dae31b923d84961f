"""The asset state machine: the one table of allowed ``Asset.status`` moves, and the helpers that
every decider needs.

The decisions themselves live with whoever decides, and each goes through ``ASSETS.apply``
(compare-and-swap on the status the caller saw + one ``AssetEvent`` with the actor, in the same
transaction):

- the seller's review: ``seller.review`` (``asset_seller_approve``, ``asset_seller_reject``,
  ``shoot_send_to_qa``);
- QA decisions: ``qa.services`` (``asset_qa_approve``, ``asset_qa_reject``);
- publication: ``catalog.services`` (``asset_publish``).

::

    generated | seller_rejected -seller_approve-> seller_approved    (shoot in seller_review)
    generated | seller_approved -seller_reject->  seller_rejected    (shoot in seller_review)
    seller_approved             -qa_approve->     qa_approved        (shoot in qa_review)
    seller_approved             -qa_reject->      qa_rejected        (shoot in qa_review)
    qa_approved                 -publish->        published          (shoot approved)

A decider that depends on the shoot's status first locks the shoot row (``lock_shoot_of``):
a seller approving an asset while the shoot is sent to QA, or two reviewers deciding the last
two assets at once, are serialised, so the shoot is settled exactly once and never misses an
asset. The shoot's own moves are ``seller.services.SHOOTS``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from core.transitions import StateMachine, Transition, TransitionNotAllowed, table
from seller.models import Shoot, ShootStatus

from .models import Asset, AssetEvent

A = Asset.Status

TRANSITIONS: dict[str, Transition] = table(
    Asset.Status,
    """
    seller_approve   generated, seller_rejected   -> seller_approved
    seller_reject    generated, seller_approved   -> seller_rejected
    qa_approve       seller_approved              -> qa_approved
    qa_reject        seller_approved              -> qa_rejected
    publish          qa_approved                  -> published
    """,
)

#: how a refused action reads to the person who tried it
VERBS = {
    "seller_approve": "approve",
    "seller_reject": "reject",
    "qa_approve": "decide on",
    "qa_reject": "decide on",
    "publish": "publish",
}


class AssetStateMachine(StateMachine):
    """``StateMachine`` whose refusals say "Cannot approve an asset that is published."."""

    def refuse(self, action: str, status: str) -> TransitionNotAllowed:
        verb = VERBS.get(action, action.replace("_", " "))
        return TransitionNotAllowed(f"Cannot {verb} an asset that is {self.label(status).lower()}.")


ASSETS = AssetStateMachine(Asset, AssetEvent, TRANSITIONS, touch=("status_changed_at",))


def transition(asset: Asset, action: str, **kwargs: Any) -> Asset:
    """Move ``asset`` by ``action`` (see ``core.transitions.StateMachine.apply``)."""
    return ASSETS.apply(asset, action, **kwargs)


# --- helpers shared by the deciders -------------------------------------------------------------


def lock_shoot_of(asset: Asset) -> Shoot:
    """Lock and return the asset's shoot row (``SELECT ... FOR UPDATE``; inside a transaction)."""
    shoot_id = Asset.objects.filter(pk=asset.pk).values_list("job__run__shoot_id", flat=True)[0]
    return Shoot.objects.select_for_update().get(pk=shoot_id)


def require_shoot_status(shoot: Shoot, status: str, doing: str) -> None:
    """Refuse ``doing`` unless the shoot is in ``status``."""
    if shoot.status != status:
        raise TransitionNotAllowed(
            f"Cannot {doing} while the shoot is {ShootStatus(shoot.status).label.lower()}."
        )


def shoot_assets(shoot: Shoot) -> QuerySet[Asset]:
    """Every asset generated for ``shoot`` (all runs)."""
    return Asset.objects.filter(job__run__shoot=shoot)
