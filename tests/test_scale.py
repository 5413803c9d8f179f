"""Scale-out and robustness: runs on Dask clusters give the single-process tables, batches come back in
order, and a run killed with SIGKILL resumes to the tables of an uninterrupted run."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from metastasis import runner
from metastasis.cli import main
from metastasis.runner import DaskBatches, RunRequest, run
from metastasis.scenario import load_scenario

TABLES = ("patients", "lesions", "exams", "events")
PATIENTS, BATCH = 1000, 250  # four batches


def _assert_same_tables(expected: Path, got: Path) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(expected / name), pd.read_parquet(got / name))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "metastasis", *args], capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scale") / "single"
    run(RunRequest(load_scenario("default"), PATIENTS, out, BATCH, quiet=True))
    return out


def test_local_dask_cluster_equals_single_process(single_process: Path, tmp_path: Path) -> None:
    out = tmp_path / "dask"
    info = run(RunRequest(load_scenario("default"), PATIENTS, out, BATCH, workers=2, quiet=True))
    _assert_same_tables(single_process, out)
    assert info["status"] == "complete" and info["parts"] == PATIENTS // BATCH
    manifest = json.loads((out / "manifest.json").read_text())
    assert [b["index"] for b in manifest["batches"]] == list(range(PATIENTS // BATCH))
    assert sorted(p.name for p in (out / "exams").iterdir()) == [f"part-{i:05d}.parquet" for i in range(4)]


@pytest.mark.skipif(sys.platform != "linux", reason="local workers are forked on Linux only")
def test_local_workers_are_forked_with_the_package_imported_unless_other_threads_run() -> None:
    # a lambda travels by value, so running it imports nothing on the worker
    def imported() -> list[bool]:
        with DaskBatches(2, None) as pool:
            return list(pool.client.run(lambda: "metastasis.engine" in sys.modules).values())

    assert runner.fork_workers() and imported() == [True, True]
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="someone-else")
    other.start()
    try:
        assert not runner.fork_workers() and imported() == [False, False]  # started afresh (spawn)
    finally:
        stop.set()
        other.join()


def test_existing_scheduler_equals_single_process(single_process: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    out = tmp_path / "scheduler"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main(["simulate", "default", "--patients", str(PATIENTS), "--batch-size", str(BATCH),
                     "--out", str(out), "--scheduler", cluster.scheduler_address, "--quiet"]) == 0
        assert len(cluster.scheduler.workers) == 2  # someone else's cluster is left running
    _assert_same_tables(single_process, out)


def _fake_batch(scenario: object, values: object, first: int, count: int) -> dict[str, pa.Table]:
    """Even batches are slow, so odd ones finish first."""
    if (first // count) % 2 == 0:
        time.sleep(0.4)
    with _LOCK:
        _FINISHED.append(first // count)
    return {"patients": pa.table({"patient_id": pa.array(range(first, first + count), pa.int64())})}


_LOCK = threading.Lock()
_FINISHED: list[int] = []


def test_batches_come_back_in_order_and_only_as_many_as_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import LocalCluster

    monkeypatch.setattr(runner, "simulate_candidates", _fake_batch)
    req = RunRequest(load_scenario("default"), 1000, Path("unused"), batch_size=100)
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
          DaskBatches(1, cluster.scheduler_address) as pool):
        assert pool.slots() == 4
        _FINISHED.clear()
        batches = pool.batches(req, {}, 3, needed=6 * 100)
        got = [(i, int(b.patient_ids[0])) for i, b in batches]
        # all six needed batches, in order, though later ones finished first
        assert got == [(i, i * 100) for i in range(3, 9)]
        assert sorted(_FINISHED) != _FINISHED
        # nothing beyond what the run needs was simulated (every candidate of the fake is eligible)
        assert sorted(_FINISHED) == list(range(3, 9))


def test_one_process_simulates_the_next_batch_while_encoding_only_if_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process a batch is encoded in a thread while the next is simulated; the batches come in order,
    and none is simulated beyond those that hold the patients still needed (here 60 of every 100
    candidates are eligible: 300 patients take five batches)."""
    simulated: list[int] = []
    encoders: set[str] = set()

    def fake(scenario: object, values: object, first: int, count: int) -> dict[str, pa.Table]:
        simulated.append(first // count)
        return {"patients": pa.table({"patient_id": pa.array(range(first, first + 60), pa.int64())})}

    def encode(table: pa.Table) -> bytes:
        encoders.add(threading.current_thread().name)
        return b""

    monkeypatch.setattr(runner, "simulate_candidates", fake)
    monkeypatch.setattr(runner, "encode_part", encode)
    req = RunRequest(load_scenario("default"), 1000, Path("unused"), batch_size=100)
    batches = runner._sequential(req, {}, 3, 300)
    got = [(i, int(b.patient_ids[0]), b.rows["patients"]) for i, b in batches]
    assert got == [(i, i * 100, 60) for i in range(3, 8)]
    assert simulated == list(range(3, 8))
    assert encoders and all(name.startswith("metastasis-encode") for name in encoders)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers"),
        (["--scheduler", "nonsense"], "--scheduler"),
        (["--scheduler", "tcp://127.0.0.1:{port}"], "--scheduler"),
    ],
)
def test_bad_scheduler_is_one_line_and_leaves_no_run(args: list[str], field: str, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = [a.format(port=_free_port()) for a in args]
    result = _cli("simulate", "default", "--patients", "10", "--out", str(out), *args,
                  env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: "), result.stderr
    assert not (out / "run.json").exists()


def test_single_process_run_does_not_import_dask(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    code = ("import sys; from metastasis.cli import main; "
            f"code = main(['simulate', 'default', '--patients', '20', '--batch-size', '20', '--out', {out!r},"
            " '--quiet']); sys.exit(10 + code if 'distributed' in sys.modules or 'dask' in sys.modules else code)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def _kill_after_first_commit(out: Path, patients: int, batch: int) -> int | None:
    """Start the run, SIGKILL it once the manifest shows a committed batch; the batches committed then, or
    None when the run finished (or had committed every batch) before the kill."""
    proc = subprocess.Popen([sys.executable, "-m", "metastasis", "simulate", "default", "--patients", str(patients),
                             "--batch-size", str(batch), "--out", str(out), "--quiet"])
    manifest = out / "manifest.json"
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if manifest.exists() and json.loads(manifest.read_text())["batches"]:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait()
    if proc.returncode != -signal.SIGKILL:
        return None
    committed = json.loads(manifest.read_text())
    return len(committed["batches"]) if committed["eligible"] < patients else None


def test_sigkill_mid_run_then_resume_equals_uninterrupted(single_process: Path, tmp_path: Path) -> None:
    # more and smaller batches if the run outpaced the kill
    for patients, batch in ((PATIENTS, BATCH), (4 * PATIENTS, BATCH // 2), (8 * PATIENTS, BATCH // 10)):
        killed = tmp_path / f"killed-{batch}"
        committed = _kill_after_first_commit(killed, patients, batch)
        if committed is not None:
            break
        shutil.rmtree(killed)
    else:
        pytest.fail("every run finished before it could be killed")
    assert json.loads((killed / "run.json").read_text())["status"] == "running"
    # as if kills had come between a batch's parts and its manifest entry, and during a part: parts the
    # manifest does not list (the next batch, and one the resumed run will not reach) and a half-written
    # part; --resume must drop them all
    for name in TABLES:
        for orphan in (committed, 999):
            shutil.copy(killed / name / "part-00000.parquet", killed / name / f"part-{orphan:05d}.parquet")
        (killed / name / f".part-{committed + 1:05d}.parquet.tmp").write_bytes(b"PAR1 half")
        (killed / name / ".part-00998.parquet.tmp").write_bytes(b"PAR1 half")
    kept = {p: p.stat().st_mtime_ns for p in (killed / "patients").glob("part-*.parquet")
            if int(p.stem.split("-")[1]) < committed}
    common = ["simulate", "default", "--patients", str(patients), "--batch-size", str(batch), "--quiet"]
    assert main([*common, "--out", str(killed)]) == 2  # unfinished: refused without --resume
    assert main([*common, "--out", str(killed), "--resume"]) == 0

    full = single_process
    if (patients, batch) != (PATIENTS, BATCH):
        full = tmp_path / "full"
        assert main([*common, "--out", str(full)]) == 0
    _assert_same_tables(full, killed)
    ids = pd.read_parquet(killed / "patients", columns=["patient_id"])["patient_id"]
    assert len(ids) == patients and ids.is_unique
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # committed batches were not recomputed
    assert json.loads((killed / "run.json").read_text())["status"] == "complete"
    for name in TABLES:
        assert not list((killed / name).glob(".*"))
        assert len(list((killed / name).glob("part-*.parquet"))) == len(list((full / name).glob("part-*.parquet")))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_batch_memory_is_reused_without_page_faults() -> None:
    # a fresh process: an array of 3.6 MB (below NumPy's 4 MiB for huge pages) freed and allocated again
    # faults in its pages anew by glibc's default (unmapped on free, then taken from a growing heap), hardly
    # any once keep_freed_memory() has run
    code = (
        "import resource, numpy as np\n"
        "from metastasis.runner import keep_freed_memory\n"
        "applied = keep_freed_memory() if {} else None\n"
        "a = np.ones(450_000); del a\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "b = np.ones(450_000)\n"
        "print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {}
    for keep in (False, True):
        out = subprocess.run([sys.executable, "-c", code.format(keep)], capture_output=True, text=True, check=True)
        applied, faults[keep] = out.stdout.split()
        assert applied == ("True" if keep else "None")
    if int(faults[False]) < 400:
        pytest.skip("freed pages are not faulted in again here by default: nothing to compare")
    assert int(faults[True]) < 40
