"""Many batches of a cohort: candidate ranges, eligibility, parallel workers, atomic parts, resume.

Batch ``b`` simulates the candidates ``[b * B, (b + 1) * B)``; the run keeps the first ``--patients``
eligible candidates, so the tables are the same for any batch size or number of workers (the parts
differ, their union does not). Each finished batch is committed by writing its parts atomically and
then the manifest (``DIR/manifest.json``); ``--resume`` continues after the last committed batch.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metastasis import __version__
from metastasis.engine import simulate_batch
from metastasis.errors import InputError
from metastasis.scenario import Scenario
from metastasis.tables import TABLES, build_tables, write_part

#: Candidates examined per eligible patient requested before a run gives up on its eligibility criteria.
MAX_CANDIDATES_PER_PATIENT = 1000


@dataclass(frozen=True)
class RunRequest:
    """What to simulate and where to write it."""

    scenario: Scenario
    patients: int
    out: Path
    batch_size: int = 25_000
    workers: int = 1
    resume: bool = False
    force: bool = False
    quiet: bool = False


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _header(req: RunRequest, values: dict[str, float]) -> dict[str, Any]:
    return {
        "package": "metastasis",
        "package_version": __version__,
        "scenario": req.scenario.to_toml_dict(),
        "parameters": values,
        "seed": req.scenario.seed,
        "patients": req.patients,
        "batch_size": req.batch_size,
    }


def _prepare(req: RunRequest, header: dict[str, Any]) -> dict[str, Any]:
    """Check ``--out`` and return the manifest to continue from (empty for a new run)."""
    out = req.out
    run_json = out / "run.json"
    manifest_path = out / "manifest.json"
    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{out} exists and is not a directory")
    existing = json.loads(run_json.read_text()) if run_json.exists() else None
    if existing is not None and not req.force:
        if existing.get("status") == "complete":
            raise InputError("--out", f"{out} already holds a finished run (use --force to overwrite)")
        if not req.resume:
            raise InputError("--out", f"{out} holds an unfinished run (use --resume to finish it or --force)")
        same = {k: existing.get(k) for k in ("scenario", "parameters", "seed", "patients", "batch_size")}
        if same != {k: header[k] for k in same}:
            raise InputError("--resume",
                             "the scenario, parameters, seed, patients or batch size differ from the run in --out")
        if manifest_path.exists():
            return dict(json.loads(manifest_path.read_text()))
    if req.force or existing is None:
        for name in TABLES:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("manifest.json", "run.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(run_json, {**header, "status": "running", "started": _now()})
    return {"batches": [], "eligible": 0}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def simulate_candidates(scenario: Scenario, values: dict[str, float], first: int, count: int) -> dict[str, pa.Table]:
    """Tables of the eligible patients among candidates ``[first, first + count)``."""
    course = simulate_batch(scenario, values, np.arange(first, first + count, dtype=np.int64))
    return build_tables(course)


def _task(args: tuple[Scenario, dict[str, float], int, int]) -> dict[str, pa.Table]:
    return simulate_candidates(*args)


def _truncate(tables: dict[str, pa.Table], last_id: int) -> dict[str, pa.Table]:
    return {k: t.filter(pc.less_equal(t["patient_id"], last_id)) for k, t in tables.items()}


class Progress:
    """A one-line progress bar on stderr with patients per second and time left (only on a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.start = total, enabled and sys.stderr.isatty(), time.monotonic()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        filled = int(width * min(done / self.total, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r[{bar}] {done:,}/{self.total:,} patients  {rate:,.0f}/s  {left:,.0f} s left ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _batches(req: RunRequest, values: dict[str, float], start_batch: int) -> Iterator[tuple[int, dict[str, pa.Table]]]:
    b = req.batch_size
    if req.workers <= 1:
        index = start_batch
        while True:
            yield index, simulate_candidates(req.scenario, values, index * b, b)
            index += 1
    pool = ProcessPoolExecutor(max_workers=req.workers)
    try:
        index = start_batch
        pending = [pool.submit(_task, (req.scenario, values, (index + k) * b, b)) for k in range(req.workers)]
        while True:
            future = pending.pop(0)
            pending.append(pool.submit(_task, (req.scenario, values, (index + req.workers) * b, b)))
            yield index, future.result()
            index += 1
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run(req: RunRequest) -> dict[str, Any]:
    """Simulate ``req.patients`` eligible patients into ``req.out``; returns the final ``run.json``."""
    if req.patients < 1:
        raise InputError("--patients", f"must be at least 1 (got {req.patients})")
    if req.batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1 (got {req.batch_size})")
    if req.workers < 1:
        raise InputError("--workers", f"must be at least 1 (got {req.workers})")
    values = req.scenario.parameter_values()
    header = _header(req, values)
    manifest = _prepare(req, header)
    done = int(manifest["eligible"])
    progress = Progress(req.patients, not req.quiet)
    progress.update(done)
    next_batch = len(manifest["batches"])
    max_candidates = MAX_CANDIDATES_PER_PATIENT * req.patients
    if done < req.patients:
        for index, tables in _batches(req, values, next_batch):
            ids = tables["patients"]["patient_id"].to_numpy()
            need = req.patients - done
            if len(ids) > need:
                tables = _truncate(tables, int(ids[need - 1]))
            rows = {}
            for name in TABLES:
                write_part(req.out, name, index, tables[name])
                rows[name] = tables[name].num_rows
            done += tables["patients"].num_rows
            manifest["batches"].append({"index": index, "first_candidate": index * req.batch_size,
                                        "candidates": req.batch_size, "rows": rows})
            manifest["eligible"] = done
            write_json(req.out / "manifest.json", manifest)
            progress.update(done)
            if done >= req.patients:
                break
            if (index + 1) * req.batch_size >= max_candidates:
                seen = (index + 1) * req.batch_size
                raise InputError("cohort", f"only {done} eligible patients among the first {seen:,} candidates; "
                                           "loosen the eligibility criteria")
    progress.close()
    totals = {name: sum(b["rows"][name] for b in manifest["batches"]) for name in TABLES}
    final = {**header, "status": "complete", "finished": _now(), "row_counts": totals,
             "parts": len(manifest["batches"])}
    write_json(req.out / "run.json", final)
    return final
