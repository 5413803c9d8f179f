"""``metastasis refine``: the coordinate search, the miss score, and a one-parameter run that resumes."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from metastasis.calibration import search
from metastasis.cli import main
from metastasis.parameters import CALIBRATED


def test_coordinate_search_finds_the_minimum_of_a_separable_bowl_within_bounds() -> None:
    target = {"a": 0.3, "b": -1.7, "c": 2.0}  # c's minimum lies beyond its bound (1.5)
    bounds = {"a": (0.0, 1.0), "b": (-3.0, 0.0), "c": (0.0, 1.5)}

    def score(x: dict[str, float]) -> tuple[float, int]:
        return sum((x[k] - target[k]) ** 2 for k in x), 0

    x = {"a": 0.9, "b": -0.5, "c": 0.5}
    step = {k: 0.12 * (hi - lo) for k, (lo, hi) in bounds.items()}
    moves = list(search.coordinate_search(lambda pts: [score(p) for p in pts], x, bounds, step, 50, score(x)))
    _, best_x, last_step, best, _ = moves[-1]
    assert best_x["a"] == pytest.approx(0.3, abs=0.02)
    assert best_x["b"] == pytest.approx(-1.7, abs=0.05)
    assert best_x["c"] == 1.5  # clipped at the bound
    assert all(last_step[k] < search.MIN_STEP * (hi - lo) for k, (lo, hi) in bounds.items())  # stopped by rule
    assert [m[3][0] for m in moves] == sorted((m[3][0] for m in moves), reverse=True)  # never worse


def test_objective_rows_takes_a_move_only_for_more_rows_or_as_many_with_a_smaller_miss() -> None:
    # one coordinate: a step right lowers the miss score and loses a row, a step left raises it
    table = {0.0: (10.0, 50), 0.5: (8.0, 49), -0.5: (11.0, 50)}

    def pair(points: list[dict[str, float]]) -> list[tuple[float, float]]:
        return [table[round(p["a"], 3)] for p in points]

    start = {"a": 0.0}
    by_miss = list(search.coordinate_search(pair, start, {"a": (-1.0, 1.0)}, {"a": 0.5}, 1, table[0.0], "miss"))
    by_rows = list(search.coordinate_search(pair, start, {"a": (-1.0, 1.0)}, {"a": 0.5}, 1, table[0.0], "rows"))
    assert by_miss[-1][1] == {"a": 0.5} and by_miss[-1][3] == (8.0, 49)  # a smaller miss for a lost row
    assert by_rows[-1][1] == {"a": 0.0} and by_rows[-1][2] == {"a": 0.25}  # refused: the step is halved
    ties = {0.0: (10.0, 50), 0.5: (9.0, 50), -0.5: (12.0, 51)}
    moves = list(search.coordinate_search(lambda pts: [ties[round(p["a"], 3)] for p in pts], start,
                                          {"a": (-1.0, 1.0)}, {"a": 0.5}, 1, ties[0.0], "rows"))
    assert moves[-1][1] == {"a": -0.5}  # one more row beats a smaller miss


def test_miss_score_counts_failing_rows_and_how_far_they_miss() -> None:
    table = pd.DataFrame({
        "published": [10.0, 10.0, 10.0, 10.0, 10.0],
        "simulated": [10.5, 13.0, 7.0, 100.0, float("nan")],
        "tolerance_low": [8.0] * 5, "tolerance_high": [12.0] * 5,
    })
    table["pass"] = (table["simulated"] >= 8.0) & (table["simulated"] <= 12.0)
    # row 2: 1 beyond 12 in units of 2 -> 0.5; row 3: 1 below 8 -> 0.5; row 4: capped; row 5: NaN, capped
    expected = 4 * search.FAIL_WEIGHT + 0.5 + 0.5 + 2 * search.MISS_CAP
    assert search.miss_score(table) == pytest.approx(expected)


def test_refine_one_parameter_writes_best_set_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "refine"
    args = ["refine", "--patients", "100", "--sweeps", "1", "--parameter", "death.scale_rest", "--out", str(out),
            "--quiet"]
    assert main(args) == 0
    states = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert [s["kind"] for s in states] == ["state", "tried", "state"]
    assert list(states[-1]["step"]) == ["log10:death.scale_rest"]
    best = tomllib.loads((out / "best.toml").read_text())
    assert set(best["parameters"]) == set(CALIBRATED)
    assert best["provenance"]["rows_passing"] == states[-1]["passes"]
    assert main(args) == 2  # the log exists: resume it or choose another directory
    assert main([*args, "--resume"]) == 0
    states = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert [s["kind"] for s in states][3:] == ["tried", "state"]  # one more move from the saved state
    assert main(["refine", "--parameter", "growth.carrying_capacity_mm3", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_refine_at_several_seeds_scores_the_mean_and_resumes_only_with_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "refine"
    base = ["refine", "--patients", "100", "--parameter", "death.scale_rest", "--out", str(out), "--quiet"]
    assert main([*base, "--sweeps", "0", "--seed", "1", "--seed", "2"]) == 0
    (state,) = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert state["seeds"] == [1, 2]
    req = search.SearchRequest(out=out, parameters=("death.scale_rest",))
    x, _ = search._start(req, search.start_table(req))
    one, two = (search._evaluate(100, x, seed) for seed in (1, 2))
    assert one != two  # the seeds draw different women
    assert state["score"] == pytest.approx((one[0] + two[0]) / 2) and state["passes"] == (one[1] + two[1]) / 2
    assert tomllib.loads((out / "best.toml").read_text())["provenance"]["validate_seeds"] == [1, 2]
    capsys.readouterr()
    assert tomllib.loads((out / "best.toml").read_text())["provenance"]["objective"] == "miss"
    for extra in (["--resume", "--seed", "1"], ["--resume"], ["--seed", "3", "--seed", "3"], ["--sweeps", "-1"],
                  ["--resume", "--seed", "1", "--seed", "2", "--objective", "rows"], ["--objective", "best"]):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(("error: --seed", "error: --sweeps", "error: --objective")), err


def test_refine_from_a_parameters_file_starts_there_and_holds_the_others_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--parameters FILE``: its calibrated values are the starting point, the others are held in every
    evaluation, written to best.toml with the point, and a resume must name the same file."""
    start = tmp_path / "start.toml"
    start.write_text('[parameters]\n"death.scale_rest" = 0.02\n"dissemination.dormancy_factor_brain" = 0.8\n',
                     encoding="utf-8")
    out = tmp_path / "refine"
    base = ["refine", "--patients", "100", "--parameter", "death.scale_rest", "--out", str(out), "--quiet"]
    assert main([*base, "--sweeps", "0", "--parameters", str(start)]) == 0
    (state,) = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert state["x"]["log10:death.scale_rest"] == pytest.approx(math.log10(0.02))
    assert state["fixed"] == {"dissemination.dormancy_factor_brain": 0.8}
    fixed = {"dissemination.dormancy_factor_brain": 0.8}
    assert (state["score"], state["passes"]) == search._evaluate(100, state["x"], None, fixed)
    assert search._evaluate(100, state["x"]) != search._evaluate(100, state["x"], None, fixed)
    best = tomllib.loads((out / "best.toml").read_text())["parameters"]
    assert best["dissemination.dormancy_factor_brain"] == 0.8 and best["death.scale_rest"] == pytest.approx(0.02)
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2  # without the file the fixed parameters would change
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --parameters: ")
    start.write_text('[parameters]\n"death.scale_rest" = 5.0\n', encoding="utf-8")  # outside its prior
    assert main([*base, "--parameters", str(start), "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: parameters.death.scale_rest: ")
