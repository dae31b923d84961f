"""Typed errors raised by the inference layer.

Each error carries a message written for the person who will read it (a seller, a curator or an
operator), so the Django side can store and show ``str(error)`` without rewording it.
"""

from __future__ import annotations

from typing import Any


class InferenceError(Exception):
    """Base class for every error the inference layer raises on purpose."""

    #: short machine-readable code stored with job failures
    code = "inference_error"

    def __init_subclass__(cls, *, code: str, **kwargs: Any) -> None:
        # Every subclass names its code in its header: one that forgot would otherwise inherit
        # its parent's code, and job failures of two kinds would be stored as one.
        super().__init_subclass__(**kwargs)
        cls.code = code


class InvalidImageError(InferenceError, code="invalid_image"):
    """The uploaded file is not an image we can safely use (wrong type, truncated, bomb...)."""


class NoPoseFoundError(InferenceError, code="no_pose"):
    """No body pose could be detected in the photo."""


class ModelMissingError(InferenceError, code="model_missing"):
    """A model's weights are not present in the model root."""


class ModelChecksumError(InferenceError, code="model_checksum"):
    """A weight file exists but its sha256 does not match the registry."""


class ModelLicenceError(InferenceError, code="model_licence"):
    """The model set's licence does not allow the requested use (e.g. commercial mode)."""


class GenerationCancelled(InferenceError, code="cancelled"):
    """Generation was cancelled cooperatively between denoising steps."""


class OutOfMemoryError(InferenceError, code="out_of_memory"):
    """The device ran out of memory; the job can be retried with smaller settings."""
