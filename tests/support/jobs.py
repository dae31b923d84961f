"""Job functions used only by tests that need a job of a known shape (slow, model-holding)."""

from __future__ import annotations

import time

from generation.inference.cache import models


def sleep_job(seconds: float) -> str:
    """A job that is still running when a test kills its worker."""
    time.sleep(seconds)
    return "slept"


def _load_tiny_model():
    import torch

    torch.manual_seed(0)
    time.sleep(0.2)  # a load that costs something, like reading weights
    return torch.nn.Linear(16, 4)


def use_cached_model(value: float) -> float:
    """Runs a real (small) torch model that the worker must load once for many jobs."""
    import torch

    model = models.get("test-linear", _load_tiny_model)
    with torch.no_grad():
        return float(model(torch.full((1, 16), value)).sum())
