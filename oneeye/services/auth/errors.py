"""The errors of logins, sessions, API keys and user administration."""

from __future__ import annotations

from oneeye.errors import Conflict, Forbidden, Invalid, NotFound, OneEyeError


class AuthError(OneEyeError):
    """A login, session or key is not valid (the message never says which part was wrong)."""


class ThrottledError(AuthError):
    """Too many failed logins from one client address: its logins pause for ``retry_after``
    seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(
            f"too many failed logins from your address; try again in {self.retry_after} seconds"
        )


class WrongPasswordError(AuthError, Forbidden):
    """The current password given to change it is wrong."""


class UserError(Invalid):
    """A user cannot be created or changed as asked (bad name, weak password, name taken)."""


class UserNotFoundError(UserError, NotFound):
    """No user or API key with that id or name."""


class UserExistsError(UserError, Conflict):
    """The username is taken."""
