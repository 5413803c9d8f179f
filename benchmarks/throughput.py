"""Throughput of `metastasis simulate default`: wall time, patients per second, rows per table, peak memory,
and where the time of a batch goes.

Run: ``.venv/bin/python benchmarks/throughput.py [--patients 100000 1000000] [--batch-size 50000] [--workers K]``.
Each size runs ``python -m metastasis simulate default`` in a fresh process; output goes to a temporary
directory. CPU time is that process's and its workers' (with ``--workers``), peak RSS the largest of
them. "first part s" is when the first batch's parts were written: start-up (imports, the cluster) and
the batch (in one process, also the next batch, simulated while the first is encoded). Wall time well
above CPU time (one process) means the machine was busy with something else.
First, unless ``--no-cold``, the first size runs cold: Numba's compile cache in an empty directory
(``NUMBA_CACHE_DIR``), so that every compiled function is compiled in that run, as on a fresh install;
the sizes then run warm, with the package's own cache.
Then one batch of ``--batch-size`` candidates runs in this process with timers around the entry
points of the pipeline: the counter-based random numbers (every function of ``metastasis.streams``),
the model (``engine.simulate_batch`` less its random numbers), building the Arrow tables
(``tables.build_tables``) and writing Parquet (``tables.encode_part`` and ``tables.write_part``).
With ``--floor`` the same batch is timed again for a *quiet* cohort — the same women with no distant
seeding (``dissemination.mu`` at its lower bound) and no residual disease after surgery, so that nothing
happens after diagnosis but follow-up and other-cause death — with the default follow-up and with none:
what a batch costs before any metastasis is simulated, and how much of that is the follow-up exams'
rows (one per exam and organ, SPEC).
``--set KEY=VALUE`` (repeatable, as for ``metastasis simulate``) applies to every run and batch: how much
a coarser resolution would buy, e.g. ``--set parameters.death.step_days=56`` or
``--set parameters.engine.max_colonies_per_patient=100``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def measure(patients: int, batch_size: int, workers: int, cold: bool = False,
            overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """One run in a fresh process; ``cold``: with an empty Numba cache (everything compiled in the run);
    ``overrides``: ``--set`` arguments."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "metastasis", "simulate", "default", "--patients", str(patients),
               "--out", str(out), "--batch-size", str(batch_size), "--workers", str(workers), "--quiet"]
        cmd += [arg for override in overrides for arg in ("--set", override)]
        env = dict(os.environ)
        if cold:
            env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")  # Dask workers inherit it
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env)
        first_part = out / "patients" / "part-00000.parquet"  # renamed into place once written
        first = math.nan
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if math.isnan(first) and first_part.exists():
                first = time.perf_counter() - start
            time.sleep(0.02)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"simulate failed with status {status}")
        info = json.loads((out / "run.json").read_text())
        size_mb = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 1e6
    return {
        "patients": patients, "batch_size": batch_size, "workers": workers, "cold": cold, "wall_s": round(wall, 2),
        "first_part_s": round(first, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "patients_per_s": round(patients / wall), "rows": info["row_counts"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024), "parquet_mb": round(size_mb, 1),
    }


class Timers:
    """Exclusive seconds in each group of wrapped functions: time in a wrapped function less the time in
    the wrapped functions it calls (a call nested in one of its own group counts once)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._active: dict[str, int] = {}
        self._children: list[float] = []  # per active timed call: seconds in timed calls below it

    def wrap(self, group: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._active.get(group):
                return fn(*args, **kwargs)
            self._active[group] = 1
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._active[group] = 0
                self.seconds[group] = self.seconds.get(group, 0.0) + elapsed - self._children.pop()
                if self._children:
                    self._children[-1] += elapsed
        return timed


@contextmanager
def patched(replacements: dict[Callable[..., Any], Callable[..., Any]]) -> Iterator[None]:
    """Replace each function by its wrapper wherever a loaded ``metastasis`` module holds it by name
    (``streams.uniform`` and ``from metastasis.streams import uniform`` alike); undo on exit."""
    undo: list[tuple[types.ModuleType, str, Any]] = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "metastasis" or name.startswith("metastasis.")):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, types.FunctionType) and value in replacements:
                undo.append((module, attr, value))
                setattr(module, attr, replacements[value])
    try:
        yield
    finally:
        for module, attr, value in undo:
            setattr(module, attr, value)


#: Scenario overrides of the quiet cohort: nothing seeds distant colonies, surgery leaves nothing behind.
QUIET = ("parameters.dissemination.mu=1e-8", "parameters.surgery.residual_probability_bcs=0",
         "parameters.surgery.residual_probability_mastectomy=0", "parameters.surgery.nodal_residual_probability=0")
#: ... and no follow-up exams or clinic visits.
NO_FOLLOWUP = ("followup.exams=[]", "followup.clinic_visit_until_months=0")


def breakdown(batch_size: int, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """Seconds of one in-process batch of the default scenario (with ``--set`` style ``overrides``), by
    part of the pipeline."""
    from metastasis import engine, runner, streams, tables
    from metastasis.scenario import load_scenario

    scenario = load_scenario("default", overrides)
    warm = min(batch_size, 1000)
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, caches, first-call costs
        runner.run(runner.RunRequest(scenario, warm, Path(tmp) / "warm", warm, quiet=True))
    timers = Timers()
    replacements: dict[Callable[..., Any], Callable[..., Any]] = {
        f: timers.wrap("random", f) for f in vars(streams).values()
        if isinstance(f, types.FunctionType) and f.__module__ == streams.__name__}
    replacements[engine.simulate_batch] = timers.wrap("model", engine.simulate_batch)
    replacements[tables.build_tables] = timers.wrap("tables", tables.build_tables)
    replacements[tables.encode_part] = timers.wrap("write", tables.encode_part)
    replacements[tables.write_part] = timers.wrap("write", tables.write_part)
    with tempfile.TemporaryDirectory() as tmp, patched(replacements):
        start = time.perf_counter()
        runner.run(runner.RunRequest(scenario, batch_size, Path(tmp) / "run", batch_size, quiet=True))
        total = time.perf_counter() - start
    parts = {
        "random numbers (metastasis.streams)": timers.seconds.get("random", 0.0),
        "model arithmetic (engine, less random numbers)": timers.seconds.get("model", 0.0),
        "building Arrow tables (tables.build_tables)": timers.seconds.get("tables", 0.0),
        "writing Parquet (tables.encode_part, write_part)": timers.seconds.get("write", 0.0),
    }
    parts["other (runner: eligibility, manifest)"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold run (empty Numba cache)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process timing of one batch")
    parser.add_argument("--floor", action="store_true",
                        help="also time the batch for a quiet cohort (no metastasis), with and without follow-up")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="scenario or parameter override for every run (repeatable)")
    args = parser.parse_args()
    extra = tuple(args.set)
    if extra:
        from metastasis.errors import InputError
        from metastasis.scenario import load_scenario

        try:
            load_scenario("default", extra).parameter_values()
        except InputError as e:
            raise SystemExit(f"error: {e}") from None
        print("overrides: " + ", ".join(extra))
    if args.patients:
        print(f"{'patients':>16} {'wall s':>8} {'first part s':>13} {'CPU s':>7} {'patients/s':>11} "
              f"{'peak RSS MB':>12} {'parquet MB':>11}  rows")
    runs = [(args.patients[0], True)] if args.patients and not args.no_cold else []
    for n, cold in runs + [(n, False) for n in args.patients]:
        r = measure(n, args.batch_size, args.workers, cold, extra)
        label = f"{r['patients']:,}" + (" cold" if cold else "")
        print(f"{label:>16} {r['wall_s']:>8} {r['first_part_s']:>13} {r['cpu_s']:>7} {r['patients_per_s']:>11,} "
              f"{r['peak_rss_mb']:>12,} {r['parquet_mb']:>11}  {r['rows']}", flush=True)
    if args.no_breakdown:
        return
    cohorts: list[tuple[str, tuple[str, ...]]] = [("default" + (" with " + ", ".join(extra) if extra else ""), ())]
    if args.floor:
        cohorts += [("quiet cohort (no metastasis, no residual disease)", QUIET),
                    ("quiet cohort without follow-up exams or visits", QUIET + NO_FOLLOWUP)]
    for label, overrides in cohorts:
        parts = breakdown(args.batch_size, extra + overrides)
        total = parts.pop("total")
        print(f"\nwhere the time goes: one batch of {args.batch_size:,} candidates in one process, {label}, "
              f"{total:.2f} s ({total * 1e6 / args.batch_size / 2:.0f} s per 1,000,000 on two cores at this rate)")
        for name, seconds in parts.items():
            print(f"  {name:<48} {seconds:>7.2f} s {100 * seconds / total:>5.1f} %")


if __name__ == "__main__":
    main()
