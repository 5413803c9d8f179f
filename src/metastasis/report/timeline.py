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
_EVENT_STYLE = {  # kind -> (marker, colour); kinds not listed get a grey marker of their own
    "symptom_onset": ("*", "#f28e2b"),
    "death": ("X", "#111111"),
    "progression": ("P", "#b2182b"),
    "skeletal_event": ("s", "#e08214"),
    "palliative_care": ("h", "#7b3294"),
    "not_treated": ("x", "#7f7f7f"),
}
#: Treatment families (the part of ``detail`` before ":"); others are grey.
_FAMILY_COLOURS = {"surgery": "#54278f", "radiotherapy": "#d94801", "chemotherapy": "#2171b5",
                   "endocrine": "#238b45", "anti_her2": "#c51b8a", "resection": "#8c510a"}
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


def _treatment_spans(ev: pd.DataFrame) -> tuple[list[tuple[float, float, str]], list[tuple[float, str]]]:
    """Pair each ``treatment_end`` with the latest open ``treatment_start`` of the same detail.

    Returns the spans (start day, end day, detail) and the starts left unpaired (day, detail); events
    without a detail say nothing drawable and are left out.
    """
    ev = ev[ev["detail"] != ""]
    starts = ev[ev["kind"] == "treatment_start"].sort_values("time_days", kind="stable")
    open_: dict[str, list[float]] = {}
    for t, d in zip(starts["time_days"], starts["detail"], strict=True):
        open_.setdefault(str(d), []).append(float(t))
    spans: list[tuple[float, float, str]] = []
    ends = ev[ev["kind"] == "treatment_end"].sort_values("time_days", kind="stable")
    for t_end, d in zip(ends["time_days"], ends["detail"], strict=True):
        pending = [t for t in open_.get(str(d), []) if t <= t_end]
        if pending:
            t0 = pending[-1]
            open_[str(d)].remove(t0)
            spans.append((t0, float(t_end), str(d)))
    points = sorted((t, d) for d, ts in open_.items() for t in ts)
    return spans, points


def _family(detail: str) -> str:
    return detail.split(":", 1)[0] if detail else "treatment"


def _event_style(kind: str) -> tuple[str, str]:
    if kind in _EVENT_STYLE:
        return _EVENT_STYLE[kind]
    return ("odp<>"[sum(map(ord, kind)) % 5], "#555555")


def _care_rows(events: pd.DataFrame) -> list[str]:
    """``events`` (if any event besides diagnosis, detection, treatments) then one row per treatment family."""
    treat = events[events["kind"].isin(["treatment_start", "treatment_end"]) & (events["detail"] != "")]
    families = list(dict.fromkeys(_family(str(d)) for d in treat.sort_values("time_days", kind="stable")["detail"]))
    other = events[~events["kind"].isin(["diagnosis", "detection", "treatment_start", "treatment_end"])]
    return (["events"] if len(other) else []) + families


def _draw_patient(ax: Axes, p: pd.Series, story: str, les: pd.DataFrame, exams: pd.DataFrame,
                  events: pd.DataFrame, x_min_days: float) -> set[str]:
    """Draw one patient; returns the event kinds drawn (for the legend)."""
    care_rows = _care_rows(events)
    rows = _rows(les)
    y_of = {o: len(care_rows) + i for i, o in enumerate(rows)}
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
    spans, points = _treatment_spans(events)
    last_label: dict[str, tuple[float, str]] = {}
    marks = [(t0, t1, d, True) for t0, t1, d in spans] + [(t, t, d, False) for t, d in points]
    for k, (t0, t1, detail, is_span) in enumerate(sorted(marks)):
        fam = _family(detail)
        y = care_rows.index(fam)
        colour = _FAMILY_COLOURS.get(fam, "#5a5a5a")
        if is_span:
            ax.plot([t0 * yr, t1 * yr], [y, y], color=colour, lw=4.0, alpha=0.75, solid_capstyle="butt")
        else:
            ax.scatter([t0 * yr], [y], marker="v", s=30, color=colour, zorder=6)
        label = detail.split(":", 1)[1] if ":" in detail else detail
        prev = last_label.get(fam)
        if label and not (prev and prev[1] == label and t0 * yr - prev[0] < 1.5):
            ax.text(t0 * yr, y - 0.22 - 0.2 * (k % 2), label.replace("_", " "), fontsize=5.8, color=colour)
            last_label[fam] = (t0 * yr, label)
    kinds: set[str] = set()
    for _, ev in events.iterrows():
        kind = str(ev["kind"])
        if kind in ("diagnosis", "detection", "treatment_start", "treatment_end"):
            continue
        organ = ev["organ"] if isinstance(ev["organ"], str) else ""
        y = y_of[organ] if kind in ("symptom_onset", "skeletal_event") and organ in y_of else 0
        marker, colour = _event_style(kind)
        ax.scatter([ev["time_days"] * yr], [y], marker=marker, s=60 if marker == "*" else 30, color=colour,
                   zorder=6)
        kinds.add(kind)
    ax.axvline(0, color="#555", lw=0.8, ls="--")
    labels = [r.replace("_", " ") for r in care_rows] + [o.replace("_", " ") for o in rows]
    ax.set_yticks(range(len(labels)), labels, fontsize=7.5)
    ax.set_ylim(len(labels) - 0.4, -0.9)
    if care_rows:
        ax.axhline(len(care_rows) - 0.5, color="#cccccc", lw=0.6)
    ax.set_title(_describe(p, story), fontsize=8.2, loc="left")
    ax.grid(axis="y", visible=False)
    return kinds


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
    heights = [1.5 + len(_rows(lesions[lesions["patient_id"] == pid]))
               + len(_care_rows(events[events["patient_id"] == pid])) for pid in stories["patient_id"]]
    fig, axes = new_figure(9.6, 0.42 * sum(heights) + 1.6, nrows=len(stories), sharex=True, squeeze=False,
                           height_ratios=heights)
    x_min = -years_before * DAYS_PER_YEAR
    last = 0.0
    kinds: set[str] = set()
    for ax, (_, s) in zip(axes[:, 0], stories.iterrows(), strict=True):
        pid = int(s["patient_id"])
        p = pts.loc[pid]
        last = max(last, float(p["death_days"]) if pd.notna(p["death_days"]) else float(p["followup_end_days"]))
        kinds |= _draw_patient(ax, p, str(s["story"]), lesions[lesions["patient_id"] == pid],
                               exams[exams["patient_id"] == pid], events[events["patient_id"] == pid], x_min)
    axes[-1, 0].set_xlim(-years_before - 0.2, last / DAYS_PER_YEAR + 0.4)
    axes[-1, 0].set_xlabel("years from diagnosis (dashed line)")
    fig.legend(handles=_legend_handles(kinds), loc="outside lower center", ncols=4, frameon=False, fontsize=7.2)
    return svg_of(fig)


def _legend_handles(kinds: set[str]) -> Sequence[Line2D]:
    grey = "#6b6b6b"
    handles = [Line2D([], [], color=grey, lw=1.0, ls=":", label="dormant colony"),
               Line2D([], [], color=grey, lw=1.4, label="growing, under 2 mm: no scan can see it"),
               Line2D([], [], color=grey, lw=5.0, label="2 mm or more: visible"),
               Line2D([], [], marker="D", color="white", markeredgecolor="#111", ls="", label="detected")]
    handles += [Line2D([], [], marker=m, color=c, ls="", markersize=7 if m in "|X" else 6, label=label)
                for m, c, _, label in RESULT_STYLE.values()]
    handles += [Line2D([], [], color="#2171b5", lw=4.0, alpha=0.75, label="treatment, start to end"),
                Line2D([], [], marker="v", color="#2171b5", ls="", label="treatment given")]
    order = [k for k in _EVENT_STYLE if k in kinds] + sorted(kinds - set(_EVENT_STYLE))
    for kind in order:
        marker, colour = _event_style(kind)
        handles.append(Line2D([], [], marker=marker, color=colour, ls="", markersize=9 if marker == "*" else 6,
                              label="symptoms begin" if kind == "symptom_onset" else kind.replace("_", " ")))
    return handles
