"""Timelines of a few patients: each lesion from seeding to the end, each scan and what it saw, each event.

One picture shows how a metastasis can be present yet missed: the lesion's line is thin while it is
under 2 mm (no scan can see it), thick once it is visible, and the scans along it are marked by their
result (a red cross where a scan looked at the organ and missed it). Events are drawn generically from
the ``events`` table, so treatments appear as the treatment module records them (``detail`` labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from metastasis.report.render import ORGAN_COLOURS, RESULT_STYLE, new_figure, svg_of
from metastasis.vocabulary import DAYS_PER_YEAR, DISTANT_ORGANS, ORGANS

STORIES: dict[str, str] = {
    "missed": "present at diagnosis, missed by staging",
    "later": "seeded after diagnosis",
    "followup": "found by a follow-up scan before symptoms",
    "symptoms": "found because of symptoms",
    "stage4": "stage IV at diagnosis",
}
_EVENT_STYLE = {  # kind -> (marker, colour)
    "symptom_onset": ("*", "#f28e2b"),
    "treatment_start": ("v", "#2c7fb8"),
    "treatment_end": ("^", "#2c7fb8"),
    "death": ("X", "#111111"),
    "progression": ("P", "#b2182b"),
    "skeletal_event": ("D", "#8c6d31"),
    "palliative_care": ("h", "#7b3294"),
    "not_treated": ("x", "#7f7f7f"),
}
_MAX_LESIONS_PER_ORGAN = 3
_MAX_ORGANS = 5


def missed_at_staging(exams: pd.DataFrame) -> np.ndarray:
    """Patients with a staging exam that looked at a distant organ holding a lesion and missed it (fn)."""
    m = exams[(exams["purpose"] == "staging") & (exams["result"] == "fn") & exams["organ"].isin(DISTANT_ORGANS)]
    return np.unique(m["patient_id"].to_numpy())


def story_candidates(patients: pd.DataFrame, recurrences: pd.DataFrame, lesions: pd.DataFrame) -> dict[str, np.ndarray]:
    """Patient ids fitting each story of :data:`STORIES` (``recurrences``: ``analysis.distant_recurrences``)."""
    distant = lesions[lesions["organ"].isin(DISTANT_ORGANS)]
    organs = distant.groupby("patient_id")["organ"].nunique()
    legible = set(organs[organs <= _MAX_ORGANS - 1].index)
    rel = recurrences[recurrences["relapse"] & recurrences["patient_id"].isin(legible)]
    first = (distant[distant["detected_days"].notna()]
             .sort_values(["patient_id", "detected_days", "diameter_at_detection_mm"], ascending=[True, True, False])
             .drop_duplicates("patient_id").set_index("patient_id"))
    seeded_after = first.index[first["seeded_days"] > 0.0]
    lead = rel["distant_symptom_days"] - rel["first_distant_days"]
    occult = set(patients.loc[patients["occult_distant"], "patient_id"])
    stage4 = patients[(patients["clinical_stage"] == "IV") & patients["patient_id"].isin(legible)]["patient_id"]
    return {
        "missed": rel.loc[rel["patient_id"].isin(occult), "patient_id"].to_numpy(),
        "later": rel.loc[rel["patient_id"].isin(seeded_after), "patient_id"].to_numpy(),
        "followup": rel.loc[(lead > 30.0) & (rel["found_by"] != "symptoms"), "patient_id"].to_numpy(),
        "symptoms": rel.loc[rel["found_by"] == "symptoms", "patient_id"].to_numpy(),
        "stage4": stage4.to_numpy(),
    }


def pick_stories(candidates: dict[str, np.ndarray], prefer: dict[str, np.ndarray] | None = None, n: int = 4,
                 seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` patients, one per story in the order of :data:`STORIES` (``followup`` before
    ``symptoms``; only one of those two), chosen at random with ``seed`` among the candidates (among
    ``prefer[story]`` when that leaves some). Columns ``patient_id``, ``story``."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    taken: set[int] = set()
    for story in STORIES:
        if story == "symptoms" and any(r["story"] == "followup" for r in rows):
            continue
        pool = np.array([i for i in candidates.get(story, []) if int(i) not in taken], dtype=np.int64)
        if prefer and story in prefer:
            better = np.intersect1d(pool, prefer[story])
            pool = better if better.size else pool
        if pool.size == 0:
            continue
        pid = int(rng.choice(np.sort(pool)))
        taken.add(pid)
        rows.append({"patient_id": pid, "story": story})
        if len(rows) == n:
            break
    return pd.DataFrame(rows, columns=["patient_id", "story"])


def _rows(lesions: pd.DataFrame) -> list[str]:
    present = set(lesions["organ"])
    organs = [o for o in ORGANS if o in present]
    distant = [o for o in organs if o in DISTANT_ORGANS][: _MAX_ORGANS]
    return [o for o in organs if o not in DISTANT_ORGANS] + distant


def _describe(p: pd.Series, story: str) -> str:
    end = (f"died of {str(p['death_cause']).replace('_', ' ')} at {p['death_days'] / DAYS_PER_YEAR:.1f} y"
           if pd.notna(p["death_days"]) else f"alive at {p['followup_end_days'] / DAYS_PER_YEAR:.0f} y")
    return (f"{STORIES.get(story, story)} — age {p['age_years']:.0f}, {str(p['subtype']).replace('_', ' ')}, "
            f"{p['t_stage']} {p['n_stage']}, clinical stage {p['clinical_stage']} (true {p['true_stage']}), {end}")


def _treatment_spans(ev: pd.DataFrame) -> tuple[list[tuple[float, float, str]], pd.DataFrame]:
    """Pair each ``treatment_end`` with the open ``treatment_start`` of the same detail; the rest stay points."""
    spans: list[tuple[float, float, str]] = []
    used: set[int] = set()
    starts = ev[ev["kind"] == "treatment_start"]
    for idx, end in ev[ev["kind"] == "treatment_end"].iterrows():
        open_ = starts[(starts["detail"] == end["detail"]) & (starts["time_days"] <= end["time_days"])
                       & ~starts.index.isin(list(used))]
        if len(open_):
            s = open_.index[-1]
            used.update((s, idx))
            spans.append((float(starts.at[s, "time_days"]), float(end["time_days"]), str(end["detail"])))
    return spans, ev[~ev.index.isin(list(used))]


def _draw_patient(ax: Axes, p: pd.Series, story: str, les: pd.DataFrame, exams: pd.DataFrame,
                  events: pd.DataFrame, x_min_days: float) -> None:
    rows = _rows(les)
    y_of = {o: i for i, o in enumerate(rows)}
    end_days = float(p["death_days"]) if pd.notna(p["death_days"]) else float(p["followup_end_days"])
    yr = 1.0 / DAYS_PER_YEAR
    for organ in rows:
        lo = les[les["organ"] == organ].sort_values("seeded_days").head(_MAX_LESIONS_PER_ORGAN)
        offsets = np.linspace(-0.22, 0.22, len(lo)) if len(lo) > 1 else [0.0]
        colour = ORGAN_COLOURS.get(organ, "#555")
        for off, (_, le) in zip(offsets, lo.iterrows(), strict=True):
            y = y_of[organ] + off
            start = max(float(le["seeded_days"]), x_min_days)
            stop = float(le["ended_days"]) if pd.notna(le["ended_days"]) else end_days
            wake = float(le["dormant_until_days"]) if pd.notna(le["dormant_until_days"]) else start
            seen = float(le["detectable_days"]) if pd.notna(le["detectable_days"]) else stop
            wake, seen = min(max(wake, start), stop), min(max(seen, start), stop)
            ax.plot([start * yr, wake * yr], [y, y], color=colour, lw=1.0, ls=":")
            ax.plot([wake * yr, seen * yr], [y, y], color=colour, lw=1.4, alpha=0.75)
            ax.plot([seen * yr, stop * yr], [y, y], color=colour, lw=5.0, solid_capstyle="butt")
            if pd.notna(le["detected_days"]):
                ax.scatter([le["detected_days"] * yr], [y], marker="D", s=34, color="white",
                           edgecolors="#111", linewidths=1.2, zorder=5)
    ex = exams[exams["organ"].isin(rows)]
    for result, (marker, colour, size, _) in RESULT_STYLE.items():
        e = ex[ex["result"] == result]
        if len(e):
            ax.scatter(e["time_days"] * yr, e["organ"].map(y_of) - 0.38, marker=marker, s=size,
                       color=colour, linewidths=1.2 if marker in "|x" else 0.4, zorder=4)
    care = -1.0
    spans, points = _treatment_spans(events)
    for k, (t0, t1, detail) in enumerate(spans):
        ax.plot([t0 * yr, t1 * yr], [care + 0.15 * (k % 3), care + 0.15 * (k % 3)], color="#2c7fb8",
                lw=3.5, alpha=0.7)
        ax.text(t0 * yr, care + 0.15 * (k % 3) + 0.25, detail, fontsize=6, color="#2c7fb8")
    labels: dict[float, list[str]] = {}
    for _, ev in points.iterrows():
        kind = str(ev["kind"])
        if kind in ("diagnosis", "detection"):
            continue
        marker, colour = _EVENT_STYLE.get(kind, ("o", "#555555"))
        organ = ev["organ"] if isinstance(ev["organ"], str) else ""
        y = y_of[organ] if kind in ("symptom_onset", "skeletal_event", "progression") and organ in y_of else care
        ax.scatter([ev["time_days"] * yr], [y], marker=marker, s=60 if marker == "*" else 36, color=colour,
                   zorder=6)
        if y == care:
            text = (str(ev["detail"]) if kind.startswith("treatment") else
                    f"{kind.replace('_', ' ')}" + (f": {ev['detail']}" if ev["detail"] else ""))
            labels.setdefault(round(float(ev["time_days"]) * yr, 1), []).append(text.replace("_", " "))
    for k, (t, texts) in enumerate(sorted(labels.items())):
        ax.text(t, care - 0.3 - 0.32 * (k % 2), ", ".join(dict.fromkeys(texts)), fontsize=6.3,
                color="#333", ha="left" if t <= 0.5 else "center")
    ax.axvline(0, color="#555", lw=0.8, ls="--")
    ax.set_yticks([care, *range(len(rows))], ["care", *[o.replace("_", " ") for o in rows]], fontsize=7.5)
    ax.set_ylim(len(rows) - 0.4, care - 1.05)
    ax.set_title(_describe(p, story), fontsize=8.2, loc="left")
    ax.grid(axis="y", visible=False)


def timeline_figure(patients: pd.DataFrame, lesions: pd.DataFrame, exams: pd.DataFrame, events: pd.DataFrame,
                    stories: pd.DataFrame, years_before: float = 4.0) -> str:
    """The timelines of the patients in ``stories`` (``pick_stories``), one panel each, as inline SVG.

    ``exams``/``events`` may hold just these patients' rows. The x axis is years from diagnosis, from
    ``years_before`` years before it (earlier seeding is clipped) to the last patient's end.
    """
    if len(stories) == 0:
        fig, ax = new_figure(9.0, 1.0)
        ax.axis("off")
        ax.text(0.5, 0.5, "no patient with distant disease in this run", ha="center", va="center")
        return svg_of(fig)
    pts = patients.set_index("patient_id")
    heights = [2.0 + len(_rows(lesions[lesions["patient_id"] == pid])) for pid in stories["patient_id"]]
    fig, axes = new_figure(9.6, 0.42 * sum(heights) + 1.6, nrows=len(stories), sharex=True, squeeze=False,
                           height_ratios=heights)
    x_min = -years_before * DAYS_PER_YEAR
    last = 0.0
    for ax, (_, s) in zip(axes[:, 0], stories.iterrows(), strict=True):
        pid = int(s["patient_id"])
        p = pts.loc[pid]
        last = max(last, float(p["death_days"]) if pd.notna(p["death_days"]) else float(p["followup_end_days"]))
        _draw_patient(ax, p, str(s["story"]), lesions[lesions["patient_id"] == pid],
                      exams[exams["patient_id"] == pid], events[events["patient_id"] == pid], x_min)
    axes[-1, 0].set_xlim(-years_before - 0.2, last / DAYS_PER_YEAR + 0.4)
    axes[-1, 0].set_xlabel("years from diagnosis (dashed line)")
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncols=4, frameon=False, fontsize=7.2)
    return svg_of(fig)


def _legend_handles() -> Sequence[Line2D]:
    grey = "#6b6b6b"
    handles = [Line2D([], [], color=grey, lw=1.0, ls=":", label="dormant colony"),
               Line2D([], [], color=grey, lw=1.4, label="growing, under 2 mm: no scan can see it"),
               Line2D([], [], color=grey, lw=5.0, label="2 mm or more: visible"),
               Line2D([], [], marker="D", color="white", markeredgecolor="#111", ls="", label="detected")]
    handles += [Line2D([], [], marker=m, color=c, ls="", markersize=7 if m in "|X" else 6, label=label)
                for m, c, _, label in RESULT_STYLE.values()]
    handles += [Line2D([], [], marker="*", color=_EVENT_STYLE["symptom_onset"][1], ls="", markersize=9,
                       label="symptoms begin"),
                Line2D([], [], marker="v", color="#2c7fb8", ls="", label="treatment"),
                Line2D([], [], marker="X", color="#111", ls="", label="death")]
    return handles
