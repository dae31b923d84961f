"""Typed errors raised by the inference layer.

Each error carries a message written for the person who will read it (a seller, a curator or an
operator), so the Django side can store and show ``str(error)`` without rewording it.
"""


class InferenceError(Exception):
    """Base class for every error the inference layer raises on purpose."""

    #: short machine-readable code stored with job failures
    code = "inference_error"


class InvalidImageError(InferenceError):
    """The uploaded file is not an image we can safely use (wrong type, truncated, bomb...)."""

    code = "invalid_image"


class NoPoseFoundError(InferenceError):
    """No body pose could be detected in the photo."""

    code = "no_pose"


class ModelMissingError(InferenceError):
    """A model's weights are not present in the model root."""

    code = "model_missing"


class ModelChecksumError(InferenceError):
    """A weight file exists but its sha256 does not match the registry."""

    code = "model_checksum"


class ModelLicenceError(InferenceError):
    """The model set's licence does not allow the requested use (e.g. commercial mode)."""

    code = "model_licence"


class GenerationCancelled(InferenceError):
    """Generation was cancelled cooperatively between denoising steps."""

    code = "cancelled"


class OutOfMemoryError(InferenceError):
    """The device ran out of memory; the job can be retried with smaller settings."""

    code = "out_of_memory"
