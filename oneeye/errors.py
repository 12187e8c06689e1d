"""The project's error types. Every message says what was expected and what came."""


class OneEyeError(Exception):
    """Base class of every error OneEye raises on purpose."""


class ImageError(OneEyeError):
    """An upload or file could not be used as an image (not an image, truncated, too large)."""


class FaceError(OneEyeError):
    """A photo has no usable face, or more than one where exactly one was required."""


class GalleryError(OneEyeError):
    """The gallery was asked for something it cannot do (unknown template, bad file)."""


class ModelError(OneEyeError):
    """A face model file is missing or unreadable."""


class SourceError(OneEyeError):
    """A video source cannot be used: bad URL, missing or undecodable file, bad camera index."""


class TimeLimitError(OneEyeError):
    """Work was given up: it ran past its time limit, or the one who asked for it left."""
