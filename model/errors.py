"""Errors raised while fetching or loading a model.

Every error says what is wrong and what to fix; the HTTP edge answers them with 503, since the
request itself was fine and the instance may recover (the next request tries the load again).
"""


class ModelLoadError(Exception):
    """Base class: the model could not be made ready."""

    reason = "MODEL_LOAD_FAILED"


class ModelNotFound(ModelLoadError):
    """The artifact, its manifest, or the bucket holding them does not exist."""

    reason = "MODEL_NOT_FOUND"


class ModelUnreadable(ModelLoadError):
    """The artifact exists but cannot be read or parsed (permissions, truncated, not a model)."""

    reason = "MODEL_UNREADABLE"


class ModelIntegrityError(ModelLoadError):
    """The bytes do not match the manifest (SHA-256, size, checksum) or the manifest is invalid."""

    reason = "MODEL_INTEGRITY"


class ModelUnsafe(ModelLoadError):
    """The artifact would run code on load (pickle without opt-in, untrusted skops types)."""

    reason = "MODEL_UNSAFE"


class ModelVersionMismatch(ModelLoadError):
    """The artifact was trained with another scikit-learn than the one running."""

    reason = "MODEL_VERSION_MISMATCH"


class SourceUnavailable(ModelLoadError):
    """The storage holding the model did not answer in time or refused access."""

    reason = "MODEL_SOURCE_UNAVAILABLE"
