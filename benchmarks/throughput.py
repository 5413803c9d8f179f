"""Throughput of `metastasis simulate default`: wall time, patients per second, rows per table, peak memory.

Run: ``.venv/bin/python benchmarks/throughput.py [--patients 100000 1000000] [--batch-size 25000]``.
Each size runs in a fresh process (its own peak RSS); output goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(patients: int, batch_size: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "metastasis", "simulate", "default", "--patients", str(patients),
               "--out", str(out), "--batch-size", str(batch_size), "--workers", str(workers), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"simulate failed with status {status}")
        info = json.loads((out / "run.json").read_text())
        size_mb = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 1e6
    return {
        "patients": patients, "batch_size": batch_size, "workers": workers, "wall_s": round(wall, 2),
        "patients_per_s": round(patients / wall), "rows": info["row_counts"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024), "parquet_mb": round(size_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=25_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(f"{'patients':>10} {'wall s':>8} {'patients/s':>11} {'peak RSS MB':>12} {'parquet MB':>11}  rows")
    for n in args.patients:
        r = measure(n, args.batch_size, args.workers)
        print(f"{r['patients']:>10,} {r['wall_s']:>8} {r['patients_per_s']:>11,} {r['peak_rss_mb']:>12,} "
              f"{r['parquet_mb']:>11}  {r['rows']}", flush=True)


if __name__ == "__main__":
    main()
