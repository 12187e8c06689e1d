"""What can go wrong with a case (and, as the cases API tells it, with a subscription)."""

from __future__ import annotations

from oneeye.errors import OneEyeError


class AlertError(OneEyeError):
    """A case or subscription cannot be created or changed as asked."""


class CaseNotFoundError(AlertError):
    """No case has this id."""


class CaseClosedError(AlertError):
    """The case is no longer active."""


class SubscriptionNotFoundError(AlertError):
    """No subscription has this id."""


class CaseApprovedError(AlertError):
    """The case is approved already."""
