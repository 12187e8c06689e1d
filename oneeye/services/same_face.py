"""Is a new photo of a person really of that person? The same-face check of enrolment.

A photo of someone else enrolled into a person's account would make the cameras greet the
wrong human by that person's name. So before a new template is stored, its face is compared
with the person's own templates and with everyone else in the gallery: it is *suspicious* when
it is farther from the person's nearest template than the person's watchlist threshold plus
``SAME_FACE_SLACK`` (two photos of one human rarely are; two humans usually are), or nearer to
another person than to this one. The first photo of a person has nothing to compare with and
always passes. A suspicious photo is refused (``SameFaceError``, a conflict) unless the
enrolment is forced; a forced one is audited with the distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from oneeye.errors import Conflict
from oneeye.gallery.index import GalleryIndex

SAME_FACE_SLACK = 0.10
"""How much farther than the watchlist threshold a new photo may be from the person's nearest
template. On face_recognition's test photos, Obama's photos are 0.16-0.29 from each other and
0.57-0.63 from Biden's: with the default threshold 0.32 the limit is 0.42, between the two."""
OTHER_PEOPLE = 5
"""How many of the nearest people the gallery is asked for, to find the nearest other one."""


@dataclass(frozen=True, slots=True)
class SameFaceCheck:
    """How a new photo's face compares with the person's templates and with other people."""

    own_templates: int
    """How many templates the person had (0: the first photo, nothing to compare)."""
    own_distance: float | None
    """Distance to the person's nearest template; ``None`` for the first photo."""
    limit: float
    """The largest ``own_distance`` that passes: the threshold plus ``SAME_FACE_SLACK``."""
    other_person: str | None
    """The nearest other person in the gallery, if any."""
    other_distance: float | None

    @property
    def far(self) -> bool:
        """The face is farther from the person's templates than the limit."""
        return self.own_distance is not None and self.own_distance > self.limit

    @property
    def nearer_other(self) -> bool:
        """The face is nearer to another person than to this one."""
        return (
            self.own_distance is not None
            and self.other_distance is not None
            and self.other_distance < self.own_distance
        )

    @property
    def suspicious(self) -> bool:
        """Whether the photo may show someone else."""
        return self.far or self.nearer_other

    def reason(self) -> str:
        """Why the photo looks like someone else, in a sentence (empty when it does not)."""
        reasons = []
        if self.far and self.own_distance is not None:
            reasons.append(
                f"its face is {self.own_distance:.3f} from this person's nearest photo, beyond "
                f"the {self.limit:.3f} two photos of one person are expected within"
            )
        if self.nearer_other and self.other_distance is not None:
            reasons.append(
                f"it is nearer to another person ({self.other_person}, "
                f"{self.other_distance:.3f}) than to this one ({self.own_distance:.3f})"
            )
        return "; ".join(reasons)

    def as_json(self) -> dict[str, Any]:
        """The check as the API and the audit log give it."""
        return {
            "own_templates": self.own_templates,
            "own_distance": _rounded(self.own_distance),
            "limit": round(self.limit, 4),
            "other_person": self.other_person,
            "other_distance": _rounded(self.other_distance),
            "far": self.far,
            "nearer_other": self.nearer_other,
            "suspicious": self.suspicious,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class SameFaceError(Conflict):
    """A new photo of a person looks like someone else; send it again with ``force`` if it is
    really them."""

    def __init__(self, check: SameFaceCheck) -> None:
        super().__init__(
            f"this photo may not show the same person: {check.reason()}. Nothing was enrolled; "
            "check the photo, or enrol it anyway with force=true"
        )
        self.check = check
        self.details = {"same_face": check.as_json()}
        """Extra fields for the error's JSON body (``oneeye.web.errors``)."""


def check_same_face(
    embedding: npt.NDArray[np.float32],
    person_id: str,
    own: Sequence[npt.NDArray[np.float32]],
    gallery: GalleryIndex,
    watchlists: Sequence[str],
) -> SameFaceCheck:
    """Compare a new face of ``person_id`` with their ``own`` template embeddings and with the
    nearest other people of ``gallery``.

    Args:
        embedding: the new face's 128-D embedding.
        person_id: whose photo it is said to be.
        own: the person's template embeddings (those stored before this one).
        gallery: the live gallery (for the other people and the thresholds).
        watchlists: the person's watchlists; the most lenient threshold of them counts (the
            gallery's default when they are on none).

    Returns:
        The distances; see :attr:`SameFaceCheck.suspicious`.
    """
    thresholds = [gallery.threshold(w) for w in watchlists] or [gallery.default_threshold]
    limit = max(thresholds) + SAME_FACE_SLACK
    own_distance = None
    if own:
        own_distance = float(np.min(np.linalg.norm(np.stack(own) - embedding, axis=1)))
    other = next(
        (m for m in gallery.search(embedding, k=OTHER_PEOPLE) if m.person != person_id), None
    )
    return SameFaceCheck(
        own_templates=len(own),
        own_distance=own_distance,
        limit=limit,
        other_person=other.person if other else None,
        other_distance=float(other.distance) if other else None,
    )
