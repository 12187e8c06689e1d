"""Distances from many faces to a few templates, for looking back through kept faces.

The index (``GalleryIndex``) answers the camera's question: a few faces against every
enrolled template, with people, thresholds and margins. A case's retro-search asks the opposite
shape: tens of thousands of kept unknown faces against the handful of photos of one person,
where only the nearest distance matters. Searching the index face by face costs a Python step
per face (measured about 100 times slower on 20,000 faces), so this is one matrix product.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def nearest_distances(
    probes: npt.NDArray[np.float32], templates: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The euclidean distance from each probe to its nearest template.

    Args:
        probes: an (m, 128) array of faces.
        templates: an (n, 128) array of templates.

    Returns:
        An (m,) float32 array; ``inf`` everywhere when there are no templates.
    """
    if len(probes) == 0 or len(templates) == 0:
        return np.full(len(probes), np.inf, dtype=np.float32)
    squared = (
        np.einsum("ij,ij->i", probes, probes)[:, None]
        + np.einsum("ij,ij->i", templates, templates)[None, :]
        - 2.0 * probes @ templates.T
    )
    nearest: npt.NDArray[np.float32] = np.sqrt(np.maximum(squared.min(axis=1), 0.0)).astype(
        np.float32
    )
    return nearest
