"""What is done for liver metastases (MODEL.md 5).

Liver-only disease, or liver plus stable bone disease, with at most ``liver.max_lesions`` lesions of at
most ``liver.max_diameter_mm`` and adequate health -> resection (R0 in 83 %, 30-day mortality 0.7 %);
otherwise, still liver-confined, SBRT if the liver dose limits allow; otherwise systemic therapy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

RESECTION, SBRT, SYSTEMIC = 0, 1, 2


def liver_decision(n_liver_lesions: NDArray[np.int64], max_diameter_mm: NDArray[np.float64],
                   extrahepatic: NDArray[np.bool_], stable_bone_only: NDArray[np.bool_],
                   health: NDArray[np.float64], sbrt_within_limits: NDArray[np.bool_],
                   values: dict[str, float]) -> NDArray[np.int8]:
    """Per patient with liver disease: RESECTION, SBRT or SYSTEMIC.

    ``extrahepatic``: disease outside the liver; ``stable_bone_only``: that disease is bone only and not
    progressing (it does not bar resection).
    """
    confined = ~extrahepatic | stable_bone_only
    resectable = (confined & (n_liver_lesions >= 1) & (n_liver_lesions <= values["liver.max_lesions"])
                  & (max_diameter_mm <= values["liver.max_diameter_mm"])
                  & (health >= values["health.min_for_resection"]))
    return np.where(resectable, RESECTION, np.where(confined & sbrt_within_limits, SBRT, SYSTEMIC)).astype(np.int8)
