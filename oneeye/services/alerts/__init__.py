"""Amber Alert: a photo of a missing (or wanted) person that every camera looks for.

One room per concern:

- ``cases``: filing (photos checked and the person added through the enrolment service),
  reading, approving, resolving and expiring cases;
- ``access``: who may do what with a case, and what a reporter may know of its person;
- ``matches``: live and retro-search matches, the (case, camera) cooldown, the outbox rows
  they give (through ``oneeye.services.notify.subscriptions``);
- ``retention``: the expiry loop and the purge of closed cases' data;
- ``words``: what the report and case pages say to a parent (a photo's problem, a match's
  likeness) in plain words;
- ``service``: ``AlertService``, the parts put together for the web layer and the server.

Rows are read and written through ``oneeye.store.repos.cases``; the distance arithmetic of a
retro-search is the gallery's (``oneeye.gallery.nearest``).
"""

from oneeye.gallery.nearest import nearest_distances
from oneeye.services.alerts.access import (
    CaseScope,
    as_seen_by,
    held_matches,
    may_approve,
    may_manage_case,
    may_see_case,
    may_see_contact,
    may_see_held,
    owns_case,
    sees_own_cases_only,
    visible_matches,
)
from oneeye.services.alerts.cases import (
    CASE_EVENTS,
    MAX_CONTACT,
    MAX_DESCRIPTION,
    MAX_HOURS,
    MAX_NAME,
    MAX_PHOTOS,
    PHOTO_KIND,
    STATUSES,
    CaseService,
    PhotoCheck,
)
from oneeye.services.alerts.errors import (
    AlertError,
    CaseApprovedError,
    CaseClosedError,
    CaseNotFoundError,
    SubscriptionNotFoundError,
)
from oneeye.services.alerts.matches import RETRO_CHUNK, WATCHLIST, MatchService, Notifier
from oneeye.services.alerts.retention import SWEEP_EVERY, CaseRetention, PurgeReport
from oneeye.services.alerts.service import AlertService
from oneeye.services.alerts.words import likeness, photo_advice
from oneeye.services.notify.base import AddressError
from oneeye.services.notify.senders import CHANNELS
from oneeye.services.notify.senders import check_address as check_channel_address
from oneeye.services.notify.subscriptions import SubscriptionInfo, Told
from oneeye.store.repos.cases import CaseInfo, MatchInfo


def check_address(channel: str, address: str) -> str:
    """``address`` cleaned if it fits ``channel`` (the channel's sender decides), else an
    ``AlertError`` saying what was expected (the cases API's error for it)."""
    try:
        return check_channel_address(channel, address)
    except AddressError as exc:
        raise AlertError(str(exc)) from None


__all__ = [
    "CASE_EVENTS",
    "CHANNELS",
    "MAX_CONTACT",
    "MAX_DESCRIPTION",
    "MAX_HOURS",
    "MAX_NAME",
    "MAX_PHOTOS",
    "PHOTO_KIND",
    "RETRO_CHUNK",
    "STATUSES",
    "SWEEP_EVERY",
    "WATCHLIST",
    "AlertError",
    "AlertService",
    "CaseApprovedError",
    "CaseClosedError",
    "CaseInfo",
    "CaseNotFoundError",
    "CaseRetention",
    "CaseScope",
    "CaseService",
    "MatchInfo",
    "MatchService",
    "Notifier",
    "PhotoCheck",
    "PurgeReport",
    "SubscriptionInfo",
    "SubscriptionNotFoundError",
    "Told",
    "as_seen_by",
    "check_address",
    "held_matches",
    "likeness",
    "may_approve",
    "may_manage_case",
    "may_see_case",
    "may_see_contact",
    "may_see_held",
    "nearest_distances",
    "owns_case",
    "photo_advice",
    "sees_own_cases_only",
    "visible_matches",
]
