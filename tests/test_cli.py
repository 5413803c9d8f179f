"""The command line: errors are one line with exit code 2; finished runs are protected; resume completes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from metastasis.cli import main
from metastasis.runner import Progress


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metastasis", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["simulate", "nosuch"], "scenario"),
        (["simulate", "default", "--patients", "0"], "--patients"),
        (["simulate", "default", "--patients", "many"], "--patients"),
        (["simulate", "default", "--batch-size", "-5"], "--batch-size"),
        (["simulate", "default", "--set", "followup.exams.0.every_months=-3"], "followup.exams.0.every_months"),
        (["simulate", "default", "--set", "parameters.dissemination.gamma=7"], "parameters.dissemination.gamma"),
        (["simulate", "default", "--set", "nonsense"], "--set"),
        (["scenarios", "--show", "nosuch"], "scenario"),
        (["summary", "/nonexistent/run"], "DIR"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], field: str, tmp_path: Path) -> None:
    result = _cli(*args, *(["--out", str(tmp_path / "o")] if args[0] == "simulate" else []))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), result.stderr
    assert "Traceback" not in result.stderr


def test_scenarios_and_parameters_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "staging-pet-ct-all" in out
    assert main(["scenarios", "--show", "default"]) == 0
    assert 'name = "default"' in capsys.readouterr().out
    assert main(["parameters", "--json"]) == 0
    params = json.loads(capsys.readouterr().out)
    assert all(p["source"] and p["unit"] for p in params)
    assert sum(p["prior"] is not None for p in params) <= 13


def test_finished_run_refused_without_force_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["simulate", "default", "--patients", "300", "--batch-size", "300", "--out", str(out), "--quiet"]) == 0
    assert main(["simulate", "default", "--patients", "300", "--batch-size", "300", "--out", str(out), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["simulate", "default", "--patients", "300", "--batch-size", "300", "--out", str(out), "--quiet",
                 "--force"]) == 0
    assert main(["summary", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("patients", "share_clinical_stage", "share_true_stage", "share_occult_distant",
                "share_occult_distant_by_organ", "share_distant_relapse_5y", "share_distant_relapse_10y",
                "first_distant_site", "median_survival_after_distant_months",
                "share_deaths_lethal_present_at_diagnosis"):
        assert key in summary
    assert summary["patients"] == 300
    assert sum(summary["share_clinical_stage"].values()) == pytest.approx(1.0)


def test_batch_never_exceeds_the_patients_when_every_candidate_is_eligible(tmp_path: Path) -> None:
    """A small run of an unrestricted cohort simulates only its own patients (one batch of --patients),
    with the tables of a run in smaller batches; a cohort with criteria keeps the batch it is given."""
    small, split = tmp_path / "small", tmp_path / "split"
    assert main(["simulate", "default", "--patients", "250", "--out", str(small), "--quiet"]) == 0
    run = json.loads((small / "run.json").read_text())
    assert run["batch_size"] == 250
    assert json.loads((small / "manifest.json").read_text())["batches"][0]["candidates"] == 250
    assert main(["simulate", "default", "--patients", "250", "--batch-size", "100", "--out", str(split),
                 "--quiet"]) == 0
    for name in ("patients", "lesions", "events", "exams"):
        assert pd.read_parquet(small / name).equals(pd.read_parquet(split / name)), name
    from metastasis.scenario import load_scenario

    assert not load_scenario("default").cohort.restricts_eligibility
    assert load_scenario("default", ['cohort.clinical_stages=["IV"]']).cohort.restricts_eligibility


def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    common = ["simulate", "default", "--patients", "900", "--batch-size", "300", "--quiet"]
    assert main([*common, "--out", str(full)]) == 0
    assert main([*common, "--out", str(cut)]) == 0
    # roll the second run back to its first committed batch, as if it had been killed then
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["batches"] = manifest["batches"][:1]
    manifest["eligible"] = manifest["batches"][0]["rows"]["patients"]
    (cut / "manifest.json").write_text(json.dumps(manifest))
    info = json.loads((cut / "run.json").read_text())
    (cut / "run.json").write_text(json.dumps({**info, "status": "running"}))
    for name in ("patients", "lesions", "exams", "events"):
        for part in sorted((cut / name).glob("part-*.parquet"))[1:]:
            part.unlink()
    assert main([*common, "--out", str(cut)]) == 2  # unfinished: needs --resume
    assert main([*common, "--out", str(cut), "--resume"]) == 0
    for name in ("patients", "lesions", "exams", "events"):
        pd.testing.assert_frame_equal(pd.read_parquet(full / name), pd.read_parquet(cut / name))


def test_progress_line_shows_rate_and_time_left_of_this_run_only() -> None:
    """The bar counts patients per second since it started (a resumed run's committed batches excluded)
    and the time left at that rate; minutes, then hours; no rate yet, no estimate."""
    bar = Progress(10_000, enabled=False, done=2_000)
    assert bar.line(2_000, 0.0).endswith("2,000/10,000 patients  0/s  --:-- left ")
    line = bar.line(6_000, 8.0)  # 4,000 patients in 8 s: 500/s, 4,000 left: 8 s
    assert line.startswith("[" + "#" * 18 + "-" * 12 + "]")
    assert line.endswith("6,000/10,000 patients  500/s  0:08 left ")
    assert Progress(10_000_000, enabled=False).line(1_000, 1.0).endswith("1,000/s  2:46:39 left ")
