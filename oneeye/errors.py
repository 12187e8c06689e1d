"""The project's error types. Every message says what was expected and what came.

The error *kinds* say what went wrong from the asker's side: something asked for does not
exist (``NotFound``), clashes with what is there (``Conflict``), is malformed (``Invalid``),
is well-formed but cannot be used (``Unusable``), is too big (``TooLarge``), is not allowed
(``Forbidden``), or a system OneEye relies on did not answer (``Unavailable``). A service's
own errors derive from one kind (and from the service's base error), so a caller can catch
either; the web layer maps the kinds to HTTP statuses in one place (``oneeye.web.errors``).
"""


class OneEyeError(Exception):
    """Base class of every error OneEye raises on purpose."""


# Kinds ---------------------------------------------------------------------------------------


class NotFound(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The thing asked for does not exist (or the asker may not know that it does)."""


class Conflict(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The request clashes with what is there: a name taken, a case already closed, an
    account kept by another system."""


class Invalid(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The request is malformed: a value out of range, a field missing, not an image."""


class Unusable(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The request is well-formed but cannot be used as it is: a photo without a usable face,
    a camera source that cannot be opened."""


class TooLarge(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The request is bigger than the server accepts."""


class Forbidden(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """The asker may not do this: a forged or expired link, a wrong current password."""


class Unavailable(OneEyeError):  # noqa: N818 (a kind, named as the asker says it)
    """A system OneEye relies on (a bank's customer directory) did not answer, or answered
    nonsense; asking again later may work."""


# Errors of the lower layers --------------------------------------------------------------------


class ImageError(Invalid):
    """An upload or file could not be used as an image (not an image, truncated, too large)."""


class FaceError(Unusable):
    """A photo has no usable face, or more than one where exactly one was required.

    ``problem`` says which, for those who put it in other words (the report page speaks to a
    parent): ``"no_face"``, ``"several_faces"``, ``"small_face"``, or ``""`` when not told."""

    def __init__(self, message: str, *, problem: str = "") -> None:
        super().__init__(message)
        self.problem = problem


class GalleryError(OneEyeError):
    """The gallery was asked for something it cannot do (unknown template, bad file)."""


class ModelError(OneEyeError):
    """A face model file is missing or unreadable."""


class SourceError(OneEyeError):
    """A video source cannot be used: bad URL, missing or undecodable file, bad camera index."""


class TimeLimitError(OneEyeError):
    """Work was given up: it ran past its time limit, or the one who asked for it left."""
