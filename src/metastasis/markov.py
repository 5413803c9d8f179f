"""The site-transition Markov chain: in which order are the distant organs found?

For each patient with distant disease found, the *site sequence* is the list of distinct distant organs
in the order of their first detection (two organs first found on the same day: the one with the larger
lesion at detection comes first). The chain is estimated from all sequences: the first-site distribution
is where it starts; a transition goes from each organ to the next organ of the sequence, and from the
last organ to one of two absorbing states:

- ``death``: death from breast cancer or its treatment;
- ``end``: follow-up ended without it (alive at the horizon, or death from another cause).

An organ *spreads* when most of the patients leaving it go on to a new organ, and *absorbs* when most
stay there until death or the end (the disease found in it is the last new site).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metastasis.vocabulary import DISTANT_ORGANS

ABSORBING: tuple[str, ...] = ("death", "end")
STATES: tuple[str, ...] = DISTANT_ORGANS + ABSORBING
#: Transitions out of an organ below this count give it the role ``few``, not spreads / absorbs.
MIN_TRANSITIONS_FOR_ROLE = 10


def site_sequences(patients: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """One row per patient and distant organ found, in the order of first detection.

    Columns: ``patient_id``, ``step`` (0 for the first site), ``organ``, ``detected_days`` (first
    detection of the organ), ``diameter_mm`` (largest lesion of the organ found that day), ``next_state``
    (the next organ, or ``death`` / ``end`` after the last one).
    """
    found = lesions[lesions["organ"].isin(DISTANT_ORGANS) & lesions["detected_days"].notna()]
    first_day = found.groupby(["patient_id", "organ"], sort=False)["detected_days"].transform("min")
    on_first = found[found["detected_days"] == first_day]
    per_organ = (on_first.groupby(["patient_id", "organ"], as_index=False, sort=False)
                 .agg(detected_days=("detected_days", "first"), diameter_mm=("diameter_at_detection_mm", "max")))
    per_organ["diameter_mm"] = per_organ["diameter_mm"].fillna(0.0)
    rank = {o: i for i, o in enumerate(DISTANT_ORGANS)}
    per_organ["_rank"] = per_organ["organ"].map(rank)
    seq = per_organ.sort_values(["patient_id", "detected_days", "diameter_mm", "_rank"],
                                ascending=[True, True, False, True], kind="stable").reset_index(drop=True)
    seq["step"] = seq.groupby("patient_id").cumcount().astype("int64")
    nxt = seq.groupby("patient_id")["organ"].shift(-1)
    cause = patients.set_index("patient_id")["death_cause"]
    absorbed = seq["patient_id"].map(cause).isin(["breast_cancer", "treatment"])
    seq["next_state"] = nxt.where(nxt.notna(), np.where(absorbed, "death", "end")).astype(str)
    return seq[["patient_id", "step", "organ", "detected_days", "diameter_mm", "next_state"]]


def first_site_distribution(sequences: pd.DataFrame) -> pd.DataFrame:
    """Where the chain starts: ``patients`` and ``share`` by first distant organ (index ``organ``)."""
    first = sequences[sequences["step"] == 0]["organ"].value_counts().reindex(list(DISTANT_ORGANS), fill_value=0)
    out = pd.DataFrame({"patients": first.astype("int64"), "share": first / max(int(first.sum()), 1)})
    out.index.name = "organ"
    return out


def transition_counts(sequences: pd.DataFrame) -> pd.DataFrame:
    """Transitions from each organ (rows) to the next organ or an absorbing state (columns)."""
    table = pd.crosstab(sequences["organ"], sequences["next_state"])
    table = table.reindex(index=list(DISTANT_ORGANS), columns=list(STATES), fill_value=0).astype("int64")
    table.index.name, table.columns.name = "from", "to"
    return table


def transition_matrix(counts: pd.DataFrame) -> pd.DataFrame:
    """Row-normalised transition probabilities (a row with no transitions is all NaN)."""
    totals = counts.sum(axis=1)
    return counts.div(totals.where(totals > 0), axis=0)


def organ_roles(counts: pd.DataFrame) -> pd.DataFrame:
    """Per organ: ``leaving`` (transitions out), ``spread_share`` (to a new organ), ``death_share``,
    ``end_share`` and ``role`` (``spreads`` when spread_share > 1/2, ``absorbs`` otherwise, ``few`` under
    :data:`MIN_TRANSITIONS_FOR_ROLE` transitions)."""
    leaving = counts.sum(axis=1)
    organ_cols = [c for c in counts.columns if c not in ABSORBING]
    denom = leaving.where(leaving > 0)
    out = pd.DataFrame({
        "leaving": leaving.astype("int64"),
        "spread_share": counts[organ_cols].sum(axis=1) / denom,
        "death_share": counts["death"] / denom,
        "end_share": counts["end"] / denom,
    })
    out["role"] = np.where(leaving < MIN_TRANSITIONS_FOR_ROLE, "few",
                           np.where(out["spread_share"] > 0.5, "spreads", "absorbs"))
    return out


@dataclass(frozen=True)
class SiteChain:
    """The estimated chain: its sequences, start distribution, counts, probabilities and organ roles."""

    sequences: pd.DataFrame
    first_site: pd.DataFrame
    counts: pd.DataFrame
    probabilities: pd.DataFrame
    roles: pd.DataFrame


def site_chain(patients: pd.DataFrame, lesions: pd.DataFrame) -> SiteChain:
    """Estimate the site-transition chain from the tables (see the module docstring)."""
    seq = site_sequences(patients, lesions)
    counts = transition_counts(seq)
    return SiteChain(seq, first_site_distribution(seq), counts, transition_matrix(counts), organ_roles(counts))
