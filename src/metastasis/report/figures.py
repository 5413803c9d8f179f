"""The figures of the reports, each drawn from an analysis DataFrame and returned as inline SVG.

Inputs are the outputs of :mod:`metastasis.analysis`, :mod:`metastasis.survival` and
:mod:`metastasis.markov`; the functions only draw. Time axes are in years (curves) or months (lead
time); shares are drawn as percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from metastasis.markov import SiteChain
from metastasis.report.render import ORGAN_COLOURS, RUN_COLOURS, STAGE_COLOURS, new_figure, svg_of
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR, STAGES

_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def _label(name: str) -> str:
    return name.replace("_", " ")


def _colour(group: str, i: int) -> str:
    return STAGE_COLOURS.get(group) or ORGAN_COLOURS.get(group) or _PALETTE[i % len(_PALETTE)]


def stage_figure(distribution: pd.DataFrame) -> str:
    """Clinical beside true stage, % of patients (``analysis.stage_distribution``)."""
    fig, ax = new_figure(7.2, 3.0)
    x = np.arange(len(distribution))
    for k, (kind, colour, label) in enumerate((("clinical", "#6baed6", "what staging found (clinical)"),
                                               ("true", "#cb181d", "what was there (true)"))):
        values = 100.0 * distribution[f"{kind}_share"].to_numpy(float)
        bars = ax.bar(x + (k - 0.5) * 0.38, values, 0.38, color=colour, label=label)
        ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], fontsize=7.5, padding=2)
    ax.set_xticks(x, [f"stage {s}" for s in distribution.index])
    ax.set_ylabel("% of patients")
    ax.legend(frameon=False, loc="upper right")
    ax.margins(y=0.15)
    return svg_of(fig)


def occult_figure(occult: pd.DataFrame) -> str:
    """Per 100 women of clinical stage I-III: metastasis visible-size but missed, and present but tiny."""
    o = occult.drop(index="any", errors="ignore")
    fig, ax = new_figure(7.2, 3.0)
    y = np.arange(len(o))
    missed = 100.0 * o["occult_share"].to_numpy(float)
    tiny = 100.0 * (o["seeded_share"] - o["occult_share"]).clip(lower=0).to_numpy(float)
    ax.barh(y, missed, color="#cb181d", label="already >= 2 mm, not found by staging")
    ax.barh(y, tiny, left=missed, color="#fcae91", label="already there, still under 2 mm")
    for yi, m, t in zip(y, missed, tiny, strict=True):
        ax.text(m + t + 0.1, yi, f"{m:.1f} + {t:.1f}", va="center", fontsize=7.5)
    ax.set_yticks(y, [_label(s) for s in o.index])
    ax.invert_yaxis()
    ax.set_xlabel("per 100 women diagnosed with stage I-III")
    ax.legend(frameon=False, loc="lower right")
    ax.margins(x=0.18)
    return svg_of(fig)


def km_figure(panels: Mapping[str, pd.DataFrame], ylabel: str = "probability", height_in: float = 3.3,
              colours: Mapping[str, str] | None = None) -> str:
    """Kaplan-Meier curves with confidence bands, one panel per entry (``survival.kaplan_meier`` frames).

    The title of each panel is its key; a frame's groups are the curves.
    """
    fig, axes = new_figure(7.6 if len(panels) > 1 else 6.0, height_in, ncols=len(panels), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for i, (group, c) in enumerate(curves.groupby("group", sort=False)):
            colour = (colours or {}).get(str(group)) or _colour(str(group), i)
            t = c["time_days"].to_numpy(float) / DAYS_PER_YEAR
            ax.fill_between(t, c["ci_lower"], c["ci_upper"], step="post", color=colour, alpha=0.18, lw=0)
            n = int(c["at_risk"].iloc[0]) if len(c) else 0
            ax.step(t, c["survival"], where="post", color=colour, lw=1.6, label=f"{_label(str(group))} (n={n:,})")
        ax.set_title(title)
        ax.set_xlabel("years")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize=7.5, loc="lower left")
    axes[0][0].set_ylabel(ylabel)
    return svg_of(fig)


def patterns_figure(ever: pd.DataFrame, first: pd.DataFrame, top: int = 10) -> str:
    """The most frequent combinations of distant organs, ever and at the first distant finding."""
    fig, axes = new_figure(7.6, 3.6, ncols=2)
    panels = (("at the first distant finding", first), ("ever, up to death or the end", ever))
    for ax, (title, frame) in zip(axes, panels, strict=True):
        f = frame.head(top)
        y = np.arange(len(f))
        colours = [ORGAN_COLOURS.get(p, "#7f7f7f") if "+" not in p else "#969696" for p in f.index]
        ax.barh(y, 100.0 * f["share"].to_numpy(float), color=colours)
        ax.set_yticks(y, [p.replace("_", " ").replace("+", " + ") for p in f.index], fontsize=7.5)
        ax.invert_yaxis()
        ax.set_xlabel("% of patients with distant disease found")
        ax.set_title(title)
    return svg_of(fig)


def transition_figure(chain: SiteChain) -> str:
    """The site-transition chain: first-site distribution and the transition matrix as a heatmap."""
    fig, (ax0, ax1) = new_figure(7.8, 3.6, ncols=2, width_ratios=[1, 3.2])
    first = chain.first_site
    y = np.arange(len(first))
    ax0.barh(y, 100.0 * first["share"].to_numpy(float), color=[ORGAN_COLOURS[o] for o in first.index])
    ax0.set_yticks(y, [_label(o) for o in first.index])
    ax0.invert_yaxis()
    ax0.set_xlabel("% first site")
    ax0.set_title("where it is found first")
    p = chain.probabilities.fillna(0.0)
    image = ax1.imshow(100.0 * p.to_numpy(float), cmap="Reds", vmin=0, vmax=100, aspect="auto")
    ax1.grid(False)
    ax1.set_xticks(np.arange(p.shape[1]), [_label(c) for c in p.columns], rotation=35, ha="right")
    ax1.set_yticks(np.arange(p.shape[0]), [f"from {_label(r)}" for r in p.index])
    for (i, j), v in np.ndenumerate(100.0 * p.to_numpy(float)):
        if chain.counts.iloc[i].sum() > 0:
            ax1.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7.5, color="white" if v > 55 else "#222")
    ax1.axvline(len(p.columns) - 2.5, color="#444", lw=1)
    ax1.set_title("what comes next (% of transitions out of each organ)")
    fig.colorbar(image, ax=ax1, shrink=0.8, label="%")
    return svg_of(fig)


def lead_time_figure(leads: pd.DataFrame, clip_months: float = 36.0) -> str:
    """Histogram of the lead time (months) of detected distant recurrences, stacked by how they were found."""
    fig, ax = new_figure(7.2, 3.0)
    lt = leads.dropna(subset=["lead_time_days"])
    months = (lt["lead_time_days"] / DAYS_PER_MONTH).clip(-clip_months, clip_months)
    bins = np.arange(-clip_months, clip_months + 1.5, 1.5)
    groups = [(str(k), months[lt["found_by"] == k]) for k in lt["found_by"].value_counts().index]
    if groups:
        ax.hist([g for _, g in groups], bins=bins, stacked=True, label=[_label(k) for k, _ in groups],
                color=[_PALETTE[i % len(_PALETTE)] for i in range(len(groups))])
        ax.legend(frameon=False, title="found by", fontsize=7.5, title_fontsize=7.5)
        counts = np.sort(np.histogram(months, bins=bins)[0])[::-1]
        if counts[0] > 20 * max(counts[1], 1):  # one bin dwarfs the rest (e.g. all found by symptoms): log scale
            ax.set_yscale("log")
    ax.axvline(0, color="#333", lw=1, ls="--")
    ax.set_xlabel(f"lead time, months (found this long before symptoms would have shown it; clipped at "
                  f"+/-{clip_months:g})")
    ax.set_ylabel("recurrences" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    return svg_of(fig)


def lethal_origin_figure(deaths: pd.DataFrame) -> str:
    """Breast cancer deaths per 100 patients of each clinical stage: lesion present at diagnosis or seeded later."""
    d = deaths.loc[[s for s in (*STAGES, "I-III") if s in deaths.index]]
    fig, ax = new_figure(7.2, 3.0)
    x = np.arange(len(d))
    n = d["patients"].clip(lower=1).to_numpy(float)
    present = 100.0 * d["present_at_diagnosis"].to_numpy(float) / n
    later = 100.0 * d["seeded_later"].to_numpy(float) / n
    other = 100.0 * (d["breast_cancer_deaths"] - d["present_at_diagnosis"] - d["seeded_later"]).to_numpy(float) / n
    ax.bar(x, present, color="#cb181d", label="lethal metastasis already present at diagnosis")
    ax.bar(x, later, bottom=present, color="#fd8d3c", label="lethal metastasis seeded after diagnosis")
    if other.sum() > 0:
        ax.bar(x, other, bottom=present + later, color="#bdbdbd", label="origin not recorded")
    for xi, p, q in zip(x, present, later, strict=True):
        ax.text(xi, p + q + 0.8, f"{p:.1f} + {q:.1f}", ha="center", fontsize=7.5)
    ax.set_xticks(x, [f"stage {s}" for s in d.index])
    ax.set_ylabel("breast cancer deaths per 100")
    ax.legend(frameon=False, loc="upper left")
    ax.margins(y=0.2)
    return svg_of(fig)


def paired_bars_figure(frame: pd.DataFrame, labels: Sequence[str], ylabel: str, value_format: str = "{:.1f}%",
                       scale: float = 100.0) -> str:
    """Two runs side by side: ``frame`` has one row per category and one column per run (in ``labels``)."""
    fig, ax = new_figure(7.2, 3.0)
    x = np.arange(len(frame))
    for k, label in enumerate(labels):
        values = scale * frame[label].to_numpy(float)
        bars = ax.bar(x + (k - 0.5) * 0.38, values, 0.38, color=RUN_COLOURS[k], label=label)
        ax.bar_label(bars, labels=[value_format.format(v) for v in values], fontsize=7.5, padding=2)
    ax.set_xticks(x, [_label(str(i)) for i in frame.index])
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    ax.margins(y=0.15)
    return svg_of(fig)


def lead_time_compare_figure(leads: Mapping[str, pd.DataFrame], clip_months: float = 36.0) -> str:
    """Lead-time distributions of two runs, overlaid (share of each run's recurrences per bin)."""
    fig, ax = new_figure(7.2, 3.0)
    bins = np.arange(-clip_months, clip_months + 1.5, 1.5)
    for k, (label, lt) in enumerate(leads.items()):
        m = (lt["lead_time_days"].dropna() / DAYS_PER_MONTH).clip(-clip_months, clip_months)
        if len(m):
            ax.hist(m, bins=bins, weights=np.full(len(m), 100.0 / len(m)), histtype="stepfilled", alpha=0.45,
                    color=RUN_COLOURS[k], label=f"{label} (mean {m.mean():.1f} months)")
    ax.axvline(0, color="#333", lw=1, ls="--")
    ax.set_xlabel("lead time, months (found before symptoms would have shown it)")
    ax.set_ylabel("% of recurrences")
    ax.legend(frameon=False)
    return svg_of(fig)


def gbsg2_figure(curves: pd.DataFrame) -> str:
    """Recurrence-free survival of the GBSG2 trial groups (Kaplan-Meier with its 95 % band) against the
    simulated, grade-standardised groups (``calibration.gbsg2.curves``): a row of panels per hormone arm."""
    arms = sorted(curves["horTh"].unique())
    groups = curves[["size", "nodes"]].drop_duplicates().sort_values(["size", "nodes"]).to_numpy().tolist()
    fig, axes = new_figure(7.6, 2.3 * len(arms) + 0.6, nrows=len(arms), ncols=len(groups), squeeze=False,
                           sharex=True, sharey=True)
    style = {"trial": ("#444444", "trial: Kaplan-Meier with its 95 % band"),
             "simulated": (RUN_COLOURS[0], "simulated, weighted to the trial group's grade mix (± 1.96 SE)")}
    for i, arm in enumerate(arms):
        for j, (size, nodes) in enumerate(groups):
            ax = axes[i][j]
            sel = curves[(curves["horTh"] == arm) & (curves["size"] == size) & (curves["nodes"] == nodes)]
            counts = []
            for source, (colour, label) in style.items():
                c = sel[sel["source"] == source]
                t = c["time_days"].to_numpy(float) / DAYS_PER_YEAR
                ax.fill_between(t, c["ci_lower"], c["ci_upper"], step="post", color=colour, alpha=0.15, lw=0)
                ax.step(t, c["survival"], where="post", color=colour, lw=1.4, label=label)
                counts.append(f"{source} n={int(c['n'].iloc[0]) if len(c) else 0:,}")
            for years in (3.0, 5.0):
                ax.axvline(years, color="#bbbbbb", lw=0.7, ls=":")
            ax.text(0.04, 0.04, "\n".join(counts), transform=ax.transAxes, fontsize=6.5, color="#555555")
            ax.set_title(f"{'tamoxifen' if arm == 'yes' else 'no tamoxifen'}\n{size.replace('<=', '≤ ')}, {nodes}",
                         fontsize=8.0)
            ax.set_ylim(0, 1.02)
        axes[i][0].set_ylabel("recurrence-free")
    for ax in axes[-1]:
        ax.set_xlabel("years")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=7.5)
    return svg_of(fig)


def fit_figure(table: pd.DataFrame, position: pd.Series, clip: float = 4.0) -> str:
    """Every validation row as a dot in its tolerance: ``position`` (``validate.tolerance_position``) is 0
    at the published value and +-1 at the bounds; rows beyond ``clip`` are drawn at it, as triangles."""
    labels = [f"{t}: {r}".replace("_", " ") for t, r in zip(table["target"], table["row"], strict=True)]
    y = np.arange(len(table))
    x = position.to_numpy(float)
    shown = np.clip(np.nan_to_num(x, nan=0.0), -clip, clip)
    ok = table["pass"].to_numpy(bool)
    fig, ax = new_figure(7.6, 0.16 * len(table) + 1.0)
    ax.axvspan(-1, 1, color="#e5f5e0", lw=0)
    ax.axvline(0, color="#31a354", lw=0.8)
    groups = ((ok, "o", "#31a354", "passes"), (~ok & (np.abs(x) <= clip), "o", "#cb181d", "fails"),
              (~ok & (x > clip), ">", "#cb181d", f"fails, beyond +{clip:g}"),
              (~ok & (x < -clip), "<", "#cb181d", f"fails, beyond -{clip:g}"))
    for mask, marker, colour, label in groups:
        if mask.any():
            ax.scatter(shown[mask], y[mask], marker=marker, s=16, color=colour, zorder=3, label=label)
    ax.set_yticks(y, labels, fontsize=5.5)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlim(-clip - 0.3, clip + 0.3)
    ax.set_xlabel("simulated value within its tolerance (0: the published value; -1, +1: the bounds)")
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return svg_of(fig)
