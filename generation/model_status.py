"""Which model sets exist under MODEL_ROOT, for /healthz and pages. Django side of the registry."""

from __future__ import annotations

from django.conf import settings


def model_sets_status() -> dict[str, dict]:
    root = settings.MODEL_ROOT
    try:
        from generation.inference import registry
    except ImportError:  # registry not installed yet: report folders only
        registry = None
    if registry is not None and hasattr(registry, "available_sets"):
        return {name: {"available": True} for name in registry.available_sets(root)}
    if not root.exists():
        return {}
    return {
        p.name: {"available": (p / "manifest.json").exists()} for p in root.iterdir() if p.is_dir()
    }
