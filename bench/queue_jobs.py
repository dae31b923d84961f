"""Jobs used by bench/queue.py (importable by the worker as ``bench.queue_jobs``)."""

from __future__ import annotations

import time

from generation.inference.cache import models


def _load_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 3, 3, padding=1)
    ).eval()


def record_start(enqueued_at: float) -> float:
    """Return how long the job waited between enqueue and start, after running a cached model."""
    started = time.time()
    import torch

    model = models.get("bench-conv", _load_model)
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    return started - enqueued_at
