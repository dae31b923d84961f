"""Signals generation sends to the layers above it (which generation must not import).

``assets_stored(sender=Asset, asset_ids=[...])`` is sent inside the transaction that records a
job's assets. A receiver that enqueues work should do so on commit (``core.queues``), so a
rolled-back transaction triggers nothing. ``qa`` connects one in ``QaConfig.ready`` to schedule
the automatic checks of the new assets.
"""

from __future__ import annotations

from django.dispatch import Signal

#: kwargs: ``asset_ids`` (list of int)
assets_stored = Signal()
