"""Many batches of a cohort: candidate ranges, eligibility, parallel workers, atomic parts, resume.

Batch ``b`` simulates the candidates ``[b * B, (b + 1) * B)``; the run keeps the first ``--patients``
eligible candidates, so the tables are the same for any batch size or number of workers (the parts
differ, their union does not). Each finished batch is committed by writing its parts atomically
(temporary file, then rename) and then the manifest (``DIR/manifest.json``, the same way); a batch
whose manifest entry is missing did not happen. ``--resume`` removes the parts of such batches (left by
a kill between a part and the manifest) and continues after the last committed batch.

With ``--workers K`` (K >= 2) the batches run on a local Dask cluster of K single-threaded processes,
with ``--scheduler ADDRESS`` on an existing ``dask.distributed`` cluster: each batch is a task whose
worker returns its Arrow tables, encoded as the Parquet files they become, to this process, which
writes them in batch order exactly as a single-process run does (no shared filesystem needed; the
client only writes bytes, and a batch crosses the network at a tenth of its Arrow size). Dask is
imported only on that path.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from metastasis import __version__
from metastasis.engine import simulate_batch
from metastasis.errors import InputError
from metastasis.scenario import Scenario
from metastasis.tables import TABLES, build_tables, decode_part, encode_part, write_part

#: Candidates examined per eligible patient requested before a run gives up on its eligibility criteria.
MAX_CANDIDATES_PER_PATIENT = 1000

#: Batches submitted to a Dask cluster but not yet written, per worker thread.
TASKS_PER_WORKER = 2

#: Seconds to wait for at least one worker to join an existing scheduler.
WORKER_WAIT_S = 30.0

#: Seconds to wait for the client to disconnect and for a local cluster to shut down.
CLOSE_TIMEOUT_S = 20.0

#: Dask settings for the workers of a local cluster. Dask's default ``MALLOC_TRIM_THRESHOLD_`` makes glibc
#: map and unmap every large NumPy array (a batch took 40 % longer), and its sampling profiler costs a few
#: per cent more; the thread limits are Dask's own defaults.
LOCAL_WORKER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
}


def fork_workers() -> bool:
    """Whether a local cluster's workers may be forked from this process rather than started afresh
    (Dask's default): on Linux, when no thread runs here but the main one and Dask's own. A forked worker
    has the package imported already and is ready about two seconds sooner; but a lock that another
    thread holds at the fork (a notebook kernel's, say) would stay held in the worker."""
    main = threading.main_thread()
    others = [t for t in threading.enumerate() if t is not main and not t.name.startswith("Dask-")]
    return sys.platform == "linux" and not others


_PART = re.compile(r"part-(\d+)\.parquet")


@dataclass(frozen=True)
class EncodedBatch:
    """One batch's tables as Parquet files in memory (:func:`metastasis.tables.encode_part`): what a Dask
    worker sends back (a tenth of the Arrow tables' size, and the client only writes bytes) and what the
    writer stores, whichever way the batch was run."""

    parts: dict[str, bytes]
    rows: dict[str, int]
    patient_ids: NDArray[np.int64]

    @classmethod
    def of(cls, tables: dict[str, pa.Table]) -> EncodedBatch:
        return cls({k: encode_part(t) for k, t in tables.items()}, {k: t.num_rows for k, t in tables.items()},
                   tables["patients"]["patient_id"].to_numpy())


#: ``(batch index, batch)`` in batch order; closing the generator stops it.
Batches = Generator[tuple[int, EncodedBatch], None, None]


@dataclass(frozen=True)
class RunRequest:
    """What to simulate and where to write it."""

    scenario: Scenario
    patients: int
    out: Path
    batch_size: int = 50_000
    workers: int = 1
    resume: bool = False
    force: bool = False
    quiet: bool = False
    scheduler: str | None = None


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


def _check_out(req: RunRequest, header: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse an ``--out`` that may not be written (changes nothing).

    Returns the manifest to continue from when resuming, ``None`` when the run starts afresh.
    """
    out = req.out
    if out.exists() and not out.is_dir():
        raise InputError("--out", f"{out} exists and is not a directory")
    run_json = out / "run.json"
    existing = json.loads(run_json.read_text()) if run_json.exists() else None
    if existing is None or req.force:
        return None
    if existing.get("status") == "complete":
        raise InputError("--out", f"{out} already holds a finished run (use --force to overwrite)")
    if not req.resume:
        raise InputError("--out", f"{out} holds an unfinished run (use --resume to finish it or --force)")
    same = {k: existing.get(k) for k in ("scenario", "parameters", "seed", "patients", "batch_size")}
    if same != {k: header[k] for k in same}:
        raise InputError("--resume",
                         "the scenario, parameters, seed, patients or batch size differ from the run in --out")
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        return dict(json.loads(manifest_path.read_text()))
    return {"batches": [], "eligible": 0}


def _start(req: RunRequest, header: dict[str, Any], manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Make ``--out`` ready: a fresh run directory, or the committed batches of the run to resume."""
    out = req.out
    if manifest is None:
        for name in TABLES:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("manifest.json", "run.json"):
            (out / name).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "run.json", {**header, "status": "running", "started": _now()})
        return {"batches": [], "eligible": 0}
    _remove_uncommitted(out, {int(b["index"]) for b in manifest["batches"]})
    return manifest


def _remove_uncommitted(out: Path, committed: set[int]) -> None:
    """Delete part files of batches the manifest does not list, and half-written temporary files."""
    for name in TABLES:
        folder = out / name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _PART.fullmatch(path.name)
            if (match and int(match.group(1)) not in committed) or (path.name.startswith(".") and
                                                                    path.name.endswith(".tmp")):
                path.unlink()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


#: ``mallopt`` parameters of glibc (malloc.h) and the values set: freed memory stays with the process.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEEP_FREED = ((_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20), (_M_MMAP_THRESHOLD, 32 << 20))


@functools.cache
def keep_freed_memory() -> bool:
    """Let the C allocator keep the memory a batch frees for the next one (glibc only; True if applied).

    A batch allocates and frees arrays of megabytes thousands of times. By default glibc maps the larger
    ones fresh and returns the heap's top to the system, so each use faults its pages in again (about
    30,000 page faults and 0.2-0.4 s of system time a batch of 50,000 candidates). Kept, a batch after
    the first faults about 1,500 pages; the peak RSS is unchanged, since a batch reuses what the previous
    one freed, but a process that has simulated holds that peak until it exits (an interactive session
    too). Elsewhere (no glibc ``mallopt``) nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in _KEEP_FREED)


def simulate_candidates(scenario: Scenario, values: dict[str, float], first: int, count: int) -> dict[str, pa.Table]:
    """Tables of the eligible patients among candidates ``[first, first + count)``."""
    keep_freed_memory()
    course = simulate_batch(scenario, values, np.arange(first, first + count, dtype=np.int64))
    return build_tables(course)


def simulate_encoded(scenario: Scenario, values: dict[str, float], first: int, count: int) -> EncodedBatch:
    """:func:`simulate_candidates`, encoded for writing: the task a batch is."""
    return EncodedBatch.of(simulate_candidates(scenario, values, first, count))


def through_patient(tables: dict[str, pa.Table], last_id: int) -> dict[str, pa.Table]:
    """The rows of patients up to ``last_id`` (a run's last batch is cut to the patients it still needs)."""
    return {k: t.filter(pc.less_equal(t["patient_id"], last_id)) for k, t in tables.items()}


def _truncate(batch: EncodedBatch, last_id: int) -> EncodedBatch:
    return EncodedBatch.of(through_patient({k: decode_part(v) for k, v in batch.parts.items()}, last_id))


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """A one-line progress bar on stderr with patients per second and time left (only on a terminal).

    The rate counts the patients simulated since this bar started, so a resumed run does not count the
    patients of the batches it found committed.
    """

    def __init__(self, total: int, enabled: bool, done: int = 0) -> None:
        self.total, self.enabled, self.start = total, enabled and sys.stderr.isatty(), time.monotonic()
        self.first = done
        self.update(done)

    def line(self, done: int, elapsed: float) -> str:
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        filled = int(width * min(done / self.total, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        return f"[{bar}] {done:,}/{self.total:,} patients  {rate:,.0f}/s  {_clock(left)} left "

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        sys.stderr.write("\r" + self.line(done, time.monotonic() - self.start))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            self.enabled = False


def _sequential(req: RunRequest, values: dict[str, float], start_batch: int, need: int) -> Batches:
    """Batches in this process, from ``start_batch``, until they hold ``need`` more eligible patients. While
    a batch is encoded (pyarrow works outside the GIL, so on another core) the next one is simulated, if
    the patients found so far fall short of ``need``: no batch is simulated for nothing."""
    found = 0
    pending: tuple[int, Future[EncodedBatch]] | None = None  # encoding while the next batch is simulated
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metastasis-encode") as encoder:
        index = start_batch
        while True:
            tables = simulate_candidates(req.scenario, values, index * req.batch_size, req.batch_size)
            found += tables["patients"].num_rows
            encoded = encoder.submit(EncodedBatch.of, tables)
            del tables
            if pending is not None:
                yield pending[0], pending[1].result()
            if found >= need:
                yield index, encoded.result()
                return
            pending = (index, encoded)
            index += 1


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while worker processes are spawned, so that they inherit it: on Ctrl-C this process
    shuts them down instead of each printing its own traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_version() -> str:
    """Run on each Dask worker: the package version it imports."""
    return __version__


class DaskBatches:
    """Batches as tasks of a ``dask.distributed`` cluster: a local one of ``workers`` processes, or the one
    whose scheduler listens at ``scheduler``. Close it (or use it as a context manager) to shut it down."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        self._logger = logging.getLogger("distributed")
        self._log_level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)  # failures reach the caller as exceptions
        self._cluster: Any = None
        self.client: Any = None
        try:
            self._connect(workers, scheduler)
        except BaseException:
            self.close()
            raise

    def _connect(self, workers: int, scheduler: str | None) -> None:
        from distributed import Client, LocalCluster

        if scheduler is None:
            import dask

            config = dict(LOCAL_WORKER_CONFIG)
            if fork_workers():
                config["distributed.worker.multiprocessing-method"] = "fork"
            with dask.config.set(config), _sigint_ignored():
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.CRITICAL)
            self.client = Client(self._cluster)
            return
        try:
            self.client = Client(scheduler)
        except (OSError, ValueError, TypeError) as err:
            raise InputError("--scheduler", f"cannot connect to {scheduler!r}: {_one_line(err)}") from None
        try:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError):
            raise InputError("--scheduler", f"no worker joined {scheduler} within {WORKER_WAIT_S:g} s") from None
        try:
            versions = set(self.client.run(_worker_version).values())
        except Exception as err:
            raise InputError("--scheduler", f"the workers of {scheduler} cannot run metastasis: "
                                            f"{_one_line(err)}") from None
        if versions != {__version__}:
            raise InputError("--scheduler", f"the workers of {scheduler} run metastasis "
                                            f"{', '.join(sorted(versions))}, this is {__version__}")

    def slots(self) -> int:
        """Tasks to keep in flight: ``TASKS_PER_WORKER`` per worker thread."""
        return TASKS_PER_WORKER * max(1, sum(self.client.nthreads().values()))

    def batches(self, req: RunRequest, values: dict[str, float], start_batch: int,
                needed: int) -> Batches:
        """Yield ``(index, tables)`` for batches ``start_batch, start_batch + 1, ...`` in order.

        Later batches finishing first wait in a buffer. Batches are submitted while fewer than
        :meth:`slots` are in flight or waiting for an earlier batch, and only while the batches in flight
        are not expected to bring the ``needed`` patients (eligible share observed so far, 1 before the
        first result), so a small run does not simulate batches it will throw away.
        """
        from distributed import as_completed

        b = req.batch_size
        futures = as_completed()
        pending: dict[str, tuple[int, Any]] = {}  # key -> (batch index, future), submitted and not received
        buffer: dict[int, EncodedBatch] = {}
        next_submit = next_yield = start_batch
        received_patients = received_batches = 0

        def submit() -> None:
            nonlocal next_submit
            ready = next_yield
            while ready in buffer:  # about to be written: their slots are free
                ready += 1
            slots = self.slots()  # once per result: workers may join or leave an existing cluster
            while True:
                outstanding = next_submit - ready
                in_flight = len(pending)
                rate = received_patients / (received_batches * b) if received_batches else 1.0
                if outstanding >= slots or in_flight * b * rate >= needed - received_patients:
                    return
                future = self.client.submit(simulate_encoded, req.scenario, values, next_submit * b, b,
                                            pure=False, priority=-next_submit)
                pending[future.key] = (next_submit, future)
                futures.add(future)
                next_submit += 1

        try:
            submit()
            for future in futures:
                index = pending.pop(future.key)[0]
                batch: EncodedBatch = future.result()
                future.release()
                buffer[index] = batch
                received_batches += 1
                received_patients += batch.rows["patients"]
                submit()
                while next_yield in buffer:
                    yield next_yield, buffer.pop(next_yield)
                    next_yield += 1
        finally:
            futures.clear()
            for _, future in pending.values():
                future.cancel()

    def close(self) -> None:
        """Disconnect, and shut the local cluster down if this started one."""
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        try:
            if client is not None:
                client.close(timeout=CLOSE_TIMEOUT_S)
        finally:
            try:
                if cluster is not None:
                    cluster.close(timeout=CLOSE_TIMEOUT_S)
            finally:
                self._logger.setLevel(self._log_level)

    def __enter__(self) -> DaskBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def run(req: RunRequest) -> dict[str, Any]:
    """Simulate ``req.patients`` eligible patients into ``req.out``; returns the final ``run.json``."""
    if req.patients < 1:
        raise InputError("--patients", f"must be at least 1 (got {req.patients})")
    if req.batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1 (got {req.batch_size})")
    if req.workers < 1:
        raise InputError("--workers", f"must be at least 1 (got {req.workers})")
    if req.scheduler is not None and req.workers > 1:
        raise InputError("--workers", "give --workers K for a local cluster or --scheduler ADDRESS, not both")
    if req.scheduler is not None and not req.scheduler.strip():
        raise InputError("--scheduler", "must be an address such as tcp://host:8786")
    values = req.scenario.parameter_values()
    header = _header(req, values)
    resumed = _check_out(req, header)
    pool: DaskBatches | None = None
    if (req.workers > 1 or req.scheduler is not None) and (resumed is None or resumed["eligible"] < req.patients):
        pool = DaskBatches(req.workers, req.scheduler)
    progress: Progress | None = None
    try:
        manifest = _start(req, header, resumed)
        done = int(manifest["eligible"])
        progress = Progress(req.patients, not req.quiet, done)
        next_batch = len(manifest["batches"])
        max_candidates = MAX_CANDIDATES_PER_PATIENT * req.patients
        if done < req.patients:
            batches = (pool.batches(req, values, next_batch, req.patients - done) if pool is not None
                       else _sequential(req, values, next_batch, req.patients - done))
            try:
                for index, batch in batches:
                    ids = batch.patient_ids
                    need = req.patients - done
                    if len(ids) > need:
                        batch = _truncate(batch, int(ids[need - 1]))
                    for name in TABLES:
                        write_part(req.out, name, index, batch.parts[name])
                    rows = {name: batch.rows[name] for name in TABLES}
                    done += batch.rows["patients"]
                    manifest["batches"].append({"index": index, "first_candidate": index * req.batch_size,
                                                "candidates": req.batch_size, "rows": rows})
                    manifest["eligible"] = done
                    write_json(req.out / "manifest.json", manifest)
                    progress.update(done)
                    if done >= req.patients:
                        break
                    if (index + 1) * req.batch_size >= max_candidates:
                        seen = (index + 1) * req.batch_size
                        raise InputError("cohort", f"only {done} eligible patients among the first {seen:,} "
                                                   "candidates; loosen the eligibility criteria")
            finally:
                batches.close()
    finally:
        if progress is not None:
            progress.close()
        if pool is not None:
            pool.close()
    totals = {name: sum(b["rows"][name] for b in manifest["batches"]) for name in TABLES}
    final = {**header, "status": "complete", "finished": _now(), "row_counts": totals,
             "parts": len(manifest["batches"])}
    write_json(req.out / "run.json", final)
    return final
