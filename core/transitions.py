"""One mechanism for every status field: a table of allowed moves, a compare-and-swap, an event row.

A status changes only through :meth:`StateMachine.apply`::

    UPDATE <table> SET status = <target> WHERE id = ? AND status = <what the caller saw> [AND ...]

Zero rows means another request or worker changed the row first: we raise
``TransitionConflict`` instead of overwriting their change. A move that the table does not list
raises ``TransitionNotAllowed``. Each change writes one event row (from, to, actor, note, time) in
the same transaction, so the audit trail can never disagree with the status.

Shoots (``seller.services``), assets (``generation.asset_status``) and faces
(``facelibrary.services``) each declare one ``StateMachine``; the services of the app that
decides call ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone


class TransitionError(Exception):
    """A row could not move to the requested status."""


class TransitionNotAllowed(TransitionError):
    """The action is not allowed from the row's current status (or its context)."""


class TransitionConflict(TransitionError):
    """Someone else changed the row between our read and our write."""


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str


def table(statuses: type[models.TextChoices], spec: str) -> dict[str, Transition]:
    """Read a transition table written as text, one move per line::

        start_generation   face_selection, seller_review   -> generating

    Every status must be one of ``statuses``: a typo fails at import, not on a seller's click.
    """
    moves: dict[str, Transition] = {}
    for line in filter(None, (line.strip() for line in spec.splitlines())):
        head, target = (part.strip() for part in line.split("->"))
        action, sources = head.split(maxsplit=1)
        names = {name.strip() for name in sources.split(",")} | {target}
        unknown = names - set(statuses.values)
        if unknown or action in moves:
            raise ValueError(f"bad transition {line!r}: unknown {sorted(unknown)} or repeated")
        moves[action] = Transition(frozenset(n.strip() for n in sources.split(",")), target)
    return moves


@dataclass(frozen=True)
class StateMachine:
    """The allowed moves of one model's ``status`` and where its events are written.

    ``event_model`` has ``from_status``, ``to_status``, ``actor``, ``note`` and a foreign key to
    the model named after it (``shoot``, ``asset``...); ``touch`` names the timestamp fields set
    on every change.
    """

    model: type[models.Model]
    event_model: type[models.Model]
    transitions: dict[str, Transition]
    touch: tuple[str, ...] = ("status_changed_at",)

    @property
    def subject(self) -> str:
        """The event's foreign key to the model."""
        return self.model._meta.model_name

    @property
    def noun(self) -> str:
        return str(self.model._meta.verbose_name)

    def allowed_actions(self, status: str) -> list[str]:
        """Actions whose move starts from ``status``."""
        return [name for name, rule in self.transitions.items() if status in rule.sources]

    def label(self, status: str) -> str:
        return str(dict(self.model._meta.get_field("status").choices).get(status, status))

    def refuse(self, action: str, status: str) -> TransitionNotAllowed:
        return TransitionNotAllowed(
            f"Cannot {action.replace('_', ' ')} a {self.noun} that is {self.label(status).lower()}."
        )

    @transaction.atomic
    def apply(
        self,
        obj: models.Model,
        action: str,
        *,
        actor=None,
        note: str = "",
        guard: dict[str, Any] | None = None,
        **fields: Any,
    ):
        """Move ``obj`` by ``action`` if it is still in the status the caller saw.

        ``guard`` adds conditions to the compare-and-swap (e.g. the attempt a worker owns);
        ``fields`` are written in the same UPDATE. Returns ``obj`` refreshed from the database.
        """
        rule = self.transitions[action]
        expected = obj.status
        if expected not in rule.sources:
            raise self.refuse(action, expected)
        now = timezone.now()
        stamps = dict.fromkeys(self.touch, now)
        changed = self.model.objects.filter(pk=obj.pk, status=expected, **(guard or {})).update(
            status=rule.target, **stamps, **fields
        )
        if changed == 0:
            # Not an error in the data: another request or worker got there first.
            current = self.model.objects.filter(pk=obj.pk).values_list("status", flat=True).first()
            raise TransitionConflict(
                f"The {self.noun} changed meanwhile (now {current}); {action} was not applied."
            )
        self.event_model.objects.create(
            **{f"{self.subject}_id": obj.pk},
            from_status=expected,
            to_status=rule.target,
            actor=actor,
            note=note,
        )
        obj.refresh_from_db()
        return obj
