"""What can go wrong with a case (and, as the cases API tells it, with a subscription)."""

from __future__ import annotations

from oneeye.errors import Conflict, Invalid, NotFound


class AlertError(Invalid):
    """A case or subscription cannot be created or changed as asked."""


class CaseNotFoundError(AlertError, NotFound):
    """No case has this id."""


class CaseClosedError(AlertError, Conflict):
    """The case is no longer active."""


class SubscriptionNotFoundError(AlertError, NotFound):
    """No subscription has this id."""


class CaseApprovedError(AlertError, Conflict):
    """The case is approved already."""
