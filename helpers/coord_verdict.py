"""The coordinate check's verdict on one layer (notebook 12): flat, growing or shrinking.

Plain functions only (see ``helpers.editable``): ``helpers.coord_check`` looks
``slope_verdict`` up here each time it decides, so an edit is what the next cell runs.
"""

from __future__ import annotations

import numpy as np

FLAT_TOLERANCE = 0.1  # |slope| below this is flat whatever the seeds say


def slope_verdict(slopes, floor: float = FLAT_TOLERANCE) -> str:
    """Does one layer's delta depend on the width? ``slopes`` holds that layer's
    log-log slope (delta against width) at one step, one value per seed.

    Return ``"flat"``, ``"growing"`` or ``"shrinking"``: decide on the mean over the
    seeds, and call it flat unless the mean lies farther from 0 than the noise,
    which is the seeds' spread (max - min) but never less than ``floor``.
    """
    ### BEGIN SOLUTION
    slopes = np.asarray(slopes, dtype=float).ravel()
    if slopes.size == 0 or not np.isfinite(slopes).all():
        raise ValueError(f"slope_verdict needs finite slopes, one per seed; got {slopes!r}.")
    mean = slopes.mean()
    tolerance = max(floor, slopes.max() - slopes.min())
    if mean > tolerance:
        return "growing"
    if mean < -tolerance:
        return "shrinking"
    return "flat"
    ### END SOLUTION
