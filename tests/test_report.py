"""The analysis API on a real run, the HTML report parsed (every figure, nothing leaving the file), the
comparison, and the report / compare commands."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metastasis
from metastasis import analysis, markov
from metastasis.cli import main
from metastasis.comparison import compare_runs
from metastasis.report import build_comparison, build_report, page, timeline
from metastasis.report.bodymap import body_map_svg
from metastasis.results import Run
from metastasis.vocabulary import ORGANS

FIGURES = ("fig-stage", "fig-occult", "fig-bodymap", "fig-km", "fig-by-site", "fig-patterns", "fig-chain",
           "fig-lead-time", "fig-lethal", "fig-timeline")
_URL_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background"}


class _Page(HTMLParser):
    """Collects what a self-containment check needs: figures and their SVGs, URL attributes, ids, tags."""

    def __init__(self) -> None:
        super().__init__()
        self.figure_stack: list[str | None] = []
        self.svgs: dict[str, int] = {}
        self.urls: list[tuple[str, str, str]] = []
        self.ids: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "figure":
            self.figure_stack.append(a.get("id"))
        if tag == "svg":
            for fid in self.figure_stack:
                if fid:
                    self.svgs[fid] = self.svgs.get(fid, 0) + 1
        for name, value in attrs:
            if name in _URL_ATTRS:
                self.urls.append((tag, name, value or ""))
            if name == "id" and value:
                self.ids.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self.figure_stack:
            self.figure_stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    p.close()
    return p


def assert_self_contained(html: str) -> _Page:
    """No reference leaves the file: internal anchors and data: URIs only, no script, no web address."""
    p = _parse(html)
    for tag, name, value in p.urls:
        assert value.startswith("#") or value.startswith("data:"), (tag, name, value[:80])
    assert "http" not in re.sub(r"data:[^\"']*", "", html).lower()  # (base64 may spell anything)
    assert not any("//" in v for _, _, v in p.urls if not v.startswith("data:")), "a URL with an authority"
    assert not re.search(r"url\((?!#)", html), "a CSS url() that is not a fragment"
    assert "@import" not in html and "<script" not in html.lower()
    assert not ({"script", "iframe", "object", "embed", "img", "video", "audio"} & p.tags)
    duplicates = {i for i in p.ids if p.ids.count(i) > 1}
    assert not duplicates, sorted(duplicates)[:5]
    return p


@pytest.mark.parametrize("bad", [
    '<a href="https://example.org">x</a>', '<img src="figure.png">', '<link rel="stylesheet" href="s.css">',
    "<script>1</script>", '<div style="background:url(x.png)"></div>', "<p>see http colon</p>",
    '<svg><use href="file.svg#a"/></svg>', '<p id="a"></p><p id="a"></p>',
])
def test_the_self_containment_check_catches(bad: str) -> None:
    assert_self_contained('<p id="ok">fine <a href="#ok">here</a></p>')
    with pytest.raises(AssertionError):
        assert_self_contained(f"<html><body>{bad}</body></html>")


@pytest.fixture(scope="module")
def run(default_run: Path) -> Run:
    return metastasis.load(default_run)


@pytest.fixture(scope="module")
def report_html(run: Run) -> str:
    return build_report(run)


def test_load_returns_tables_and_scenario(run: Run, default_run: Path) -> None:
    assert run.scenario["name"] == "default" and run.staging_window_days == 90.0
    assert len(run.patients) == 3000 and run.info["status"] == "complete"
    for name, frame in (("patients", run.patients), ("lesions", run.lesions), ("events", run.events)):
        assert len(frame) > 0, name
        assert not any(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in frame.columns), name
    some = run.patients["patient_id"].iloc[[3, 10, 200]].tolist()
    sub = run.table_for("exams", some)
    assert set(sub["patient_id"]) == set(some) and sub["organ"].dtype == object
    full = pd.read_parquet(default_run / "exams")
    assert len(sub) == int(full["patient_id"].isin(some).sum())


def test_analysis_on_a_run_agrees_with_the_engine_flags(run: Run) -> None:
    p, les = run.patients, run.lesions
    occult = analysis.occult_by_organ(p, les)
    assert occult.at["any", "occult_patients"] == int(p["occult_distant"].sum())
    assert occult.at["any", "seeded_patients"] <= int(p["micrometastatic_distant"].sum())
    shift = analysis.stage_shift(p)
    assert shift.loc[["I", "II", "III"], "IV"].sum() == int(p["occult_distant"].sum())
    chain = markov.site_chain(p, les)
    found = les[les["organ"].isin(markov.DISTANT_ORGANS) & les["detected_days"].notna()]
    assert chain.first_site["patients"].sum() == found["patient_id"].nunique()
    assert int(chain.counts.to_numpy().sum()) == len(found.drop_duplicates(["patient_id", "organ"]))
    sums = chain.probabilities.sum(axis=1).dropna()
    assert np.allclose(sums, 1.0)


def test_report_has_every_figure_and_nothing_external(report_html: str, run: Run) -> None:
    p = assert_self_contained(report_html)
    for fid in FIGURES:
        assert p.svgs.get(fid, 0) >= 1, f"figure {fid} missing or without an svg"
    text = "".join(p.text)
    assert "Research and teaching software, not a medical device." in text
    n_early = int((run.patients["clinical_stage"] != "IV").sum())
    occult = page.per_hundred(float(run.patients["occult_distant"].sum()) / n_early)
    assert "Of every 100 women diagnosed with stage I-III breast cancer" in text
    assert re.search(rf"{n_early:,} women\), {re.escape(occult)} already had a metastasis", text), text[:600]


def test_body_map_shades_the_most_reached_organ_darkest(run: Run) -> None:
    inv = analysis.organ_involvement(run.patients, run.lesions)
    svg = body_map_svg(inv)
    fills = dict(re.findall(r'data-organ="(\w+)" fill="#([0-9a-f]{6})"', svg))
    assert set(fills) == set(ORGANS)

    def lightness(hex_: str) -> int:
        return sum(int(hex_[i:i + 2], 16) for i in (0, 2, 4))

    top = inv.loc[list(fills), "reached_share"].idxmax()
    least = inv.loc[list(fills), "reached_share"].idxmin()
    assert lightness(fills[top]) == min(lightness(v) for v in fills.values())
    assert lightness(fills[least]) > lightness(fills[top])


def test_timeline_picks_stories_and_draws_any_event_kind(run: Run) -> None:
    rec = analysis.distant_recurrences(run.patients, run.lesions, run.staging_window_days)
    cands = timeline.story_candidates(run.patients, rec, run.lesions)
    exams = run.table_for("exams", cands["missed"])
    prefer = {"missed": timeline.missed_at_staging(exams)}
    stories = timeline.pick_stories(cands, prefer, n=3, seed=1)
    assert len(stories) == 3 and stories["patient_id"].is_unique
    assert list(stories["story"]) == ["missed", "later", "followup" if len(cands["followup"]) else "symptoms"]
    missed = int(stories["patient_id"].iloc[0])
    assert bool(run.patients.set_index("patient_id").at[missed, "occult_distant"])
    assert missed in set(prefer["missed"])  # a staging scan looked at the organ and missed it
    # events the treatment module will add appear with their details, whatever they are
    extra = pd.DataFrame({"patient_id": missed, "time_days": [400.0, 560.0, 600.0, 650.0],
                          "kind": ["treatment_start", "treatment_end", "palliative_care", "brand_new_kind"],
                          "organ": ["", "", "", ""], "lesion_id": np.nan,
                          "detail": ["chemotherapy:line1", "chemotherapy:line1", "pain", "something"]})
    ids = stories["patient_id"].tolist()
    events = pd.concat([run.table_for("events", ids), extra], ignore_index=True)
    svg = timeline.timeline_figure(run.patients, run.lesions, run.table_for("exams", ids), events, stories)
    comments = re.findall(r"<!--\s*(.*?)\s*-->", svg)  # matplotlib keeps every text as a comment
    # one line per treatment family, labelled by what was given; every event kind gets a legend entry
    for label in ("surgery", "chemotherapy", "line1", "palliative care", "brand new kind", "events"):
        assert label in comments, label
    given = events.loc[(events["kind"] == "treatment_start") & (events["detail"] != ""), "detail"]
    assert len(given) >= len(ids)  # every sampled woman had at least her surgery
    for detail in set(given):
        family, _, what = detail.partition(":")
        assert family.replace("_", " ") in comments and (what or family).replace("_", " ") in comments, detail


def test_compare_follow_up_strategies(run: Run, intensive_run: Path) -> None:
    b = metastasis.load(intensive_run)
    c = compare_runs(run, b)
    assert c.labels == ("default", "followup-intensive") and c.shared_patients == 3000
    # same women, same staging: nobody's clinical stage moves; intensive follow-up finds recurrences earlier
    assert int(np.trace(c.migration.to_numpy())) == 3000
    h = c.headline
    assert h.at["recurrences_found_before_symptoms", "followup-intensive"] > \
        h.at["recurrences_found_before_symptoms", "default"] + 0.1
    assert h.at["mean_lead_time", "difference"] > 1.0
    hr = c.hazard_ratios
    assert set(hr.index) == {"distant_relapse_free_survival", "overall_survival", "breast_cancer_survival"}
    assert (hr["ci_lower"] <= hr["hazard_ratio"]).all() and (hr["hazard_ratio"] <= hr["ci_upper"]).all()
    assert (hr["paired"] == 1.0).all()
    html = build_comparison(run, b)
    p = assert_self_contained(html)
    for fid in ("fig-stage", "fig-lead-time", "fig-km"):
        assert p.svgs.get(fid, 0) >= 1, fid


def test_report_and_compare_commands(default_run: Path, intensive_run: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(default_run), "--out", str(out)]) == 0
    assert out.stat().st_size > 50_000 and str(out) in capsys.readouterr().out
    assert main(["compare", str(default_run), str(intensive_run), "--report", str(tmp_path / "c.html")]) == 0
    text = capsys.readouterr().out
    assert "hazard ratio" in text and "overall_survival" in text and (tmp_path / "c.html").exists()
    for args, field in ((["report", str(tmp_path / "none")], "DIR"),
                        (["report", str(default_run), "--out", str(tmp_path / "no" / "r.html")], "--out"),
                        (["report", str(default_run), "--out", str(tmp_path)], "--out"),
                        (["compare", str(default_run), str(tmp_path / "none")], "DIR_B"),
                        (["compare", str(tmp_path / "none"), str(default_run)], "DIR_A"),
                        (["compare", str(default_run), str(intensive_run), "--report", str(tmp_path / "x" / "c")],
                         "--report")):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {field}: "), (args, err)
