"""The report of one run: a single self-contained HTML page with figures, short captions and tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metastasis import analysis, markov, survival
from metastasis.report import figures, timeline
from metastasis.report.bodymap import body_map_svg
from metastasis.report.render import (
    DISCLAIMER,
    esc,
    figure_block,
    kpis,
    number,
    page,
    pct,
    per_hundred,
    section,
    table_html,
)
from metastasis.results import Run
from metastasis.vocabulary import DAYS_PER_MONTH, DAYS_PER_YEAR

#: Sections of the page: (id, title), in order; every one holds a figure.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("stage", "Stage at diagnosis: what staging saw and what was there"),
    ("occult", "Metastases present but not found at diagnosis"),
    ("bodymap", "Where the disease goes"),
    ("survival", "Distant relapse and survival"),
    ("by-site", "Survival after the first distant finding, by first site"),
    ("patterns", "Organ patterns"),
    ("chain", "The order of spread: a Markov chain between organs"),
    ("lead-time", "Lead time: found before symptoms?"),
    ("lethal", "Missed at diagnosis or seeded later?"),
    ("timeline", "A few patients' stories"),
)
#: Curves are evaluated monthly (enough for a page; the API gives every event time).
_GRID_DAYS = 30.4375


@dataclass(frozen=True)
class Facts:
    """The numbers the plain-language summary quotes (shares are 0..1, times in the unit named)."""

    patients: int
    early: int
    occult_share: float
    tiny_share: float
    relapse_5y_share: float
    relapse_10y_share: float
    bc_death_share_early: float
    present_share_of_bc_deaths: float
    later_share_of_bc_deaths: float
    median_after_distant_months: float
    top_first_site: str
    top_first_site_share: float
    share_before_symptoms: float
    median_positive_lead_months: float
    horizon_years: float


def facts(run: Run, occult: pd.DataFrame, recurrences: pd.DataFrame, leads: pd.DataFrame, deaths: pd.DataFrame,
          after_summary: pd.DataFrame, chain: markov.SiteChain) -> Facts:
    """Collect the summary's numbers from the analysis tables."""
    n_early = max(int(occult["denominator"].iloc[0]), 1)
    rel = recurrences[recurrences["relapse"]]
    early_row = deaths.loc["I-III"]
    bc = max(int(early_row["breast_cancer_deaths"]), 1)
    first = chain.first_site.sort_values("share", ascending=False)
    positive = leads.loc[leads["lead_time_days"] > 0, "lead_time_days"]
    with_cf = leads["lead_time_days"].dropna()
    return Facts(
        patients=len(run.patients), early=n_early,
        occult_share=float(occult.at["any", "occult_share"]),
        tiny_share=float(max(occult.at["any", "seeded_share"] - occult.at["any", "occult_share"], 0.0)),
        relapse_5y_share=float((rel["first_distant_days"] <= 5 * DAYS_PER_YEAR).sum()) / n_early,
        relapse_10y_share=float((rel["first_distant_days"] <= 10 * DAYS_PER_YEAR).sum()) / n_early,
        bc_death_share_early=float(early_row["breast_cancer_deaths"]) / n_early,
        present_share_of_bc_deaths=float(early_row["present_at_diagnosis"]) / bc,
        later_share_of_bc_deaths=float(early_row["seeded_later"]) / bc,
        median_after_distant_months=float(after_summary.at["all", "median_days"]) / DAYS_PER_MONTH
        if "all" in after_summary.index else float("nan"),
        top_first_site=str(first.index[0]) if len(first) and first["patients"].iloc[0] > 0 else "",
        top_first_site_share=float(first["share"].iloc[0]) if len(first) else float("nan"),
        share_before_symptoms=float((with_cf > 0).mean()) if len(with_cf) else float("nan"),
        median_positive_lead_months=float(positive.median()) / DAYS_PER_MONTH if len(positive) else float("nan"),
        horizon_years=float(run.scenario.get("horizon_years", float("nan"))),
    )


def summary_paragraph(f: Facts, scenario: str) -> str:
    """One paragraph a patient educator could quote."""
    months = (f"half of the women had died within <b>{f.median_after_distant_months:.0f} months</b>"
              if np.isfinite(f.median_after_distant_months) else "fewer than half had died by the end of follow-up")
    site = (f"; {f.top_first_site.replace('_', ' ')} was the most common first site "
            f"(<b>{pct(f.top_first_site_share, 0)}</b>)" if f.top_first_site else "")
    lead = ""
    if np.isfinite(f.share_before_symptoms):
        digits = 0 if f.share_before_symptoms >= 0.01 or f.share_before_symptoms == 0 else 1
        lead = (f" Of the distant recurrences found, <b>{pct(f.share_before_symptoms, digits)}</b> were found before "
                "symptoms alone would have revealed them"
                + (f" (by a median of {f.median_positive_lead_months:.1f} months)." if f.share_before_symptoms > 0
                   else "."))
    return (
        f'<p class="lead">Of every 100 women diagnosed with stage I-III breast cancer in this virtual cohort '
        f"(scenario <code>{esc(scenario)}</code>, {f.early:,} women), <b>{per_hundred(f.occult_share)}</b> "
        f"already had a metastasis of 2 mm or more in another organ that the staging work-up did not find, and "
        f"<b>{per_hundred(f.tiny_share)}</b> more had one already there but too small for any scan to see. "
        f"<b>{per_hundred(f.relapse_10y_share)}</b> had a distant recurrence found within 10 years "
        f"({per_hundred(f.relapse_5y_share)} within 5), and <b>{per_hundred(f.bc_death_share_early)}</b> died of "
        f"breast cancer within the {f.horizon_years:g} years followed. For <b>{pct(f.present_share_of_bc_deaths, 0)}"
        f"</b> of those deaths the metastasis that killed was already there at diagnosis; for "
        f"<b>{pct(f.later_share_of_bc_deaths, 0)}</b> it was seeded later. Once distant disease was found, "
        f"{months}{site}.{lead}</p>")


def _months(v: float) -> str:
    return number(v / DAYS_PER_MONTH, 1)


def _care_table(run: Run) -> str:
    """Whatever care the events record (treatments, palliative care, ...), generically, folded away."""
    t = analysis.care_events(run.columns("events", ["patient_id", "kind", "detail"]))
    t = t.drop(index="treatment_end", level="kind", errors="ignore")
    if len(t) == 0:
        return ""
    t.index = pd.Index([d if k == "treatment_start" else f"{k.replace('_', ' ')}: {d}" if d else
                        k.replace("_", " ") for k, d in t.index], name="event (treatments by what was given)")
    return ("<details><summary>Care recorded in the events table, all patients</summary>"
            f"{table_html(t)}</details>")


def build_report(run: Run, n_stories: int = 4, seed: int = 0) -> str:
    """The HTML of the report of ``run`` (see :data:`SECTIONS`)."""
    patients, lesions = run.patients, run.lesions
    window = run.staging_window_days
    horizon = float(run.scenario.get("horizon_years", 20.0)) * DAYS_PER_YEAR
    grid = np.arange(0.0, horizon + _GRID_DAYS, _GRID_DAYS)

    dist, shift = analysis.stage_distribution(patients), analysis.stage_shift(patients)
    occult = analysis.occult_by_organ(patients, lesions)
    rec = analysis.distant_recurrences(patients, lesions, window)
    leads = analysis.lead_times(rec)
    lead_sum = analysis.lead_time_summary(leads)
    involvement = analysis.organ_involvement(patients, lesions)
    chain = markov.site_chain(patients, lesions)
    deaths = analysis.deaths_by_lethal_origin(patients)
    relapse = survival.time_to_distant_relapse(patients, lesions, window)
    os_ = survival.overall_survival(patients)
    after = survival.survival_after_distant(patients, lesions, window)
    after_sum = pd.concat([survival.kaplan_meier_summary(after, "first_distant_site"),
                           survival.kaplan_meier_summary(after)])
    f = facts(run, occult, rec, leads, deaths, after_sum, chain)

    body = [f'<p class="disclaimer">{DISCLAIMER}</p>', summary_paragraph(f, run.name), kpis([
        (per_hundred(f.occult_share), "per 100 stage I-III: metastasis >= 2 mm missed at diagnosis"),
        (per_hundred(f.relapse_10y_share), "per 100 stage I-III: distant recurrence found within 10 years"),
        (number(f.median_after_distant_months, 0), "median months of life after distant disease is found"),
        (pct(f.present_share_of_bc_deaths, 0), "of breast cancer deaths (stage I-III): lethal lesion there at day 0"),
    ])]

    fmt_share = {c: (lambda v: pct(v)) for c in ("clinical_share", "true_share", "occult_share", "seeded_share",
                                                  "share", "reached_share", "visible_share", "found_share",
                                                  "spread_share", "death_share", "end_share",
                                                  "share_before_symptoms", "share_present_at_diagnosis")}
    body.append(section(SECTIONS[0][1], figure_block(
        figures.stage_figure(dist),
        "Share of patients by stage as the staging work-up found it (clinical) and as it truly was. Stage IV "
        "grows when what was there is counted: the difference is the metastases the work-up missed.",
        "fig-stage", table_html(shift, caption="Patients by clinical stage (rows) and true stage (columns)")),
        SECTIONS[0][0]))
    body.append(section(SECTIONS[1][1], figure_block(
        figures.occult_figure(occult),
        "Per 100 women staged I-III: a metastasis already 2 mm or more (big enough to be seen) that staging did "
        "not find, and one already seeded but still under 2 mm. A woman counts once per organ.",
        "fig-occult", table_html(occult, fmt_share)), SECTIONS[1][0]))
    body.append(section(SECTIONS[2][1], figure_block(
        body_map_svg(involvement),
        "Each organ shaded by the share of all women whose disease reached it (a lesion of 1 mm or more, at any "
        "time up to death or the end of follow-up); beside it, the share in whom it was found.",
        "fig-bodymap", table_html(involvement[["reached_share", "visible_share", "found_share"]], fmt_share,
                                  headers={"reached_share": "reached", "visible_share": "2 mm+",
                                           "found_share": "found"}), side=True), SECTIONS[2][0]))
    km = {"time to distant relapse (stage I-III)": survival.kaplan_meier(relapse, "clinical_stage", grid),
          "overall survival": survival.kaplan_meier(os_, "clinical_stage", grid)}
    km_sum = survival.kaplan_meier_summary(relapse, "clinical_stage")
    body.append(section(SECTIONS[3][1], figure_block(
        figures.km_figure(km, "probability (shaded: 95% confidence band)"),
        "Kaplan-Meier curves by clinical stage. Left: the share still free of a found distant recurrence (deaths "
        "without one are censored). Right: the share alive, all causes of death.",
        "fig-km", table_html(km_sum, {"median_days": _months, "median_ci_lower_days": _months,
                                      "median_ci_upper_days": _months, "survival_5y": pct, "survival_10y": pct},
                             headers={"median_days": "median (months)", "median_ci_lower_days": "lower",
                                      "median_ci_upper_days": "upper", "survival_5y": "free at 5 y",
                                      "survival_10y": "free at 10 y"},
                             caption="Time to distant relapse by clinical stage")), SECTIONS[3][0]))
    body.append(section(SECTIONS[4][1], figure_block(
        figures.km_figure({"survival from the first distant finding": survival.kaplan_meier(
            after, "first_distant_site", grid[grid <= after["duration_days"].max() + _GRID_DAYS])},
            "probability alive (shaded: 95% band)", 3.4),
        "Survival of every woman with distant disease found (at diagnosis or later), from that day, by the organ "
        "where it was found first.",
        "fig-by-site", table_html(after_sum, {"median_days": _months, "median_ci_lower_days": _months,
                                              "median_ci_upper_days": _months, "survival_5y": pct,
                                              "survival_10y": pct},
                                  headers={"median_days": "median (months)", "median_ci_lower_days": "lower",
                                           "median_ci_upper_days": "upper", "survival_5y": "alive at 5 y",
                                           "survival_10y": "alive at 10 y"})), SECTIONS[4][0]))
    ever, first = analysis.organ_patterns(lesions, "ever"), analysis.organ_patterns(lesions, "first")
    body.append(section(SECTIONS[5][1], figure_block(
        figures.patterns_figure(ever, first),
        "Which organs are involved together: the combinations found on the day of the first distant finding and "
        "by the end of follow-up (most frequent first).", "fig-patterns",
        _burden_table(analysis.burden_at_first_finding(lesions, window), window)), SECTIONS[5][0]))
    spreads = chain.roles.sort_values("spread_share", ascending=False)
    roles_text = ", ".join(f"{o.replace('_', ' ')} {pct(v, 0)}" for o, v in spreads["spread_share"].dropna().items())
    body.append(section(SECTIONS[6][1], figure_block(
        figures.transition_figure(chain),
        "Each woman's distant organs in the order they were found (same day: larger lesion first). Left: where "
        "the chain starts. Right: from each organ, the share of women in whom the next new organ was each other "
        "organ, or none before death from breast cancer (<i>death</i>) or the end of follow-up (<i>end</i>). "
        f"An organ <i>spreads</i> when most go on to a new site and <i>absorbs</i> otherwise; share going on: "
        f"{esc(roles_text)}.", "fig-chain",
        table_html(chain.roles, fmt_share, caption="Transitions out of each organ")), SECTIONS[6][0]))
    body.append(section(SECTIONS[7][1], figure_block(
        figures.lead_time_figure(leads),
        "For each distant recurrence found, how long before the day symptoms alone would have revealed it "
        "(the counterfactual <code>distant_symptom_days</code>); 0 when symptoms revealed it. Negative: found "
        "after that day (the symptoms' work-up took time or missed it at first).",
        "fig-lead-time", table_html(lead_sum, {"mean_days": _months, "median_days": _months,
                                               "share_before_symptoms": pct},
                                    headers={"mean_days": "mean (months)", "median_days": "median (months)"})),
        SECTIONS[7][0]))
    body.append(section(SECTIONS[8][1], figure_block(
        figures.lethal_origin_figure(deaths),
        "Breast cancer deaths per 100 women of each clinical stage, by whether the metastasis that killed was "
        "already there on the day of diagnosis (for stage I-III: missed, too small or unseen) or was seeded "
        "after it.", "fig-lethal", table_html(deaths, fmt_share)), SECTIONS[8][0]))
    body.append(section(SECTIONS[9][1], figure_block(
        _timelines(run, rec, n_stories, seed),
        "Sampled patients, one line per organ. A lesion's line is dotted while the colony sleeps, thin while "
        "it grows under 2 mm (no scan can see it), thick once it is visible; the diamond is the day it was found. "
        "Marks under each line are the scans of that organ and what they saw. Above the organs: the events "
        "(progression, palliative care, death, ...) and one line per kind of treatment, each labelled with what "
        "was given, as the events table records them.", "fig-timeline") + _care_table(run),
        SECTIONS[9][0]))
    body.append(_footer(run))
    subtitle = (f"Scenario <code>{esc(run.name)}</code> — {esc(run.scenario.get('description', ''))}<br>"
                f"{len(patients):,} virtual patients, seed {esc(run.info.get('seed'))}, metastasis "
                f"{esc(run.info.get('package_version', ''))}")
    return page(f"metastasis report: {run.name}", subtitle, "".join(body), nav=SECTIONS)


def _burden_table(burden: pd.DataFrame, window: float) -> str:
    """How many distant lesions there are when distant disease is first found: found in the work-up it sets
    off, and present (2 mm or more) that day."""
    bins = [0, 1, 3, 5, np.inf]
    labels = ["1", "2-3", "4-5", "more than 5"]
    n = max(len(burden), 1)
    found = pd.cut(burden["lesions_found"], bins, labels=labels).value_counts().reindex(labels, fill_value=0)
    present = pd.cut(burden["lesions_present"], [-1, *bins], labels=["0", *labels]).value_counts().reindex(
        ["0", *labels], fill_value=0)
    frame = pd.DataFrame({"found": found / n, "present": present / n}).reindex(["0", *labels]).fillna(0.0)
    frame.index.name = "distant lesions"
    return table_html(frame, {"found": pct, "present": pct}, caption=(
        f"Women with distant disease found ({len(burden):,}) by the number of distant lesions found within "
        f"{window:g} days of the first finding, and of lesions of 2 mm or more present that day (found or not). "
        "Clinics see more widespread disease: in a series of 2,249 women with a first treatment failure after "
        "stage I-III disease, 21.9 % were oligometastatic (as cited in the review PMC7219961). The model founds "
        "colonies one at a time and finds a single lesion more often, so local treatment of metastases "
        "(resection, SBRT) reaches more women here than in clinics"))


def _timelines(run: Run, rec: pd.DataFrame, n: int, seed: int) -> str:
    cands = timeline.story_candidates(run.patients, rec, run.lesions)
    missed = cands["missed"][:400]
    prefer = {"missed": timeline.missed_at_staging(run.table_for("exams", missed))} if missed.size else None
    stories = timeline.pick_stories(cands, prefer, n=n, seed=seed)
    ids = stories["patient_id"].tolist()
    return timeline.timeline_figure(run.patients, run.lesions, run.table_for("exams", ids),
                                    run.table_for("events", ids), stories)


def _footer(run: Run) -> str:
    return (f"<footer>{DISCLAIMER}<br>Made by <code>metastasis report {esc(run.directory)}</code> from the run's "
            "tables alone; every number above can be recomputed with <code>metastasis.load()</code> and the "
            "functions of <code>metastasis.analysis</code>, <code>metastasis.survival</code> and "
            "<code>metastasis.markov</code>. Times are from the diagnosis of the primary tumour.<br>"
            "What the model does not do (README: the misfits): distant disease comes as fewer lesions at a time "
            "than clinics see; endocrine and anti-HER2 therapy slow growth only while given, so the relapses they "
            "hold back come after they stop; which published figures the shipped parameters meet, and which "
            "they miss, is the table of <code>metastasis validate</code>.</footer>")


def write_report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run in ``directory`` to ``out`` (default ``directory/report.html``)."""
    from metastasis.results import load

    run = load(directory)
    path = Path(out) if out is not None else run.directory / "report.html"
    text = build_report(run)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
