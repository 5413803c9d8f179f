"""The lesion store: every tumour of a batch as column arrays, and what is computed from them.

:class:`Lesions` holds the primary (id 0), the regional nodal deposits (ids 1..N) and the colonies that
tumours seed (ids in order of creation per patient). A lesion grows by Gompertz from ``wake`` (the end
of dormancy) until ``ended``, in growth segments: from ``t_ref`` its Gompertz age is
``tau_ref + rate * (t - t_ref)``. Volumes, organ burdens, the day a burden crosses a threshold and each
patient's rows are computed here, the loops compiled by Numba (:func:`volume_one` is the one scalar
volume of compiled code).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from metastasis.biology import growth
from metastasis.vocabulary import END_CODE, N_ORGANS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_COLUMNS: dict[str, type] = {
    "pid": np.int64,  # patient index within the batch
    "lid": np.int64,  # lesion id within the patient
    "organ": np.int8,
    "origin": np.int8,
    "parent": np.int64,
    "seeded": np.float64,  # day the colony was founded
    "wake": np.float64,  # day growth starts (end of dormancy)
    "base_rate": np.float64,  # natural Gompertz rate a, per day
    "rate": np.float64,  # current Gompertz rate (lower while therapy suppresses growth), per day
    "t_ref": np.float64,  # start of the current growth segment (the wake day until something changes it)
    "tau_ref": np.float64,  # Gompertz age at t_ref
    "lam_ref": np.float64,  # expected colonies founded up to t_ref
    "h_ref": np.float64,  # seeding curve H at tau_ref (NaN: to be computed; a cache, written with tau_ref)
    "u_res": np.float64,  # uniform fixed at seeding: resistance to therapy (MODEL 5)
    "suppressible": np.int8,  # endocrine/anti-HER2 slow it: 1 yes, 0 resistant, -1 not yet drawn (a cache)
    "spine": np.bool_,  # a bone lesion in the spine (spinal-cord dose limit)
    "t_1mm": np.float64,  # first day >= 1 mm (NaN until then)
    "t_2mm": np.float64,  # first day >= 2 mm, visible (NaN until then)
    "det_t": np.float64,  # first detection day (NaN)
    "det_by": np.int8,  # index into DETECTED_BY
    "det_d": np.float64,  # diameter at first detection, mm
    "seed_rate": np.float64,  # m = mu 1e9^-gamma A^beta_s (x secondary scale), per day per cell^gamma
    "next_level": np.float64,  # expected-colony level at which the next colony is founded
    "n_children": np.int32,
    "t_seed": np.float64,  # day the next colony is due in the current segment (NaN: to be recomputed)
    "ended": np.float64,  # inf while alive
    "end_reason": np.int8,
}


#: Columns the next seeding day depends on: writing one makes ``t_seed`` stale.
_SEEDING_INPUTS = frozenset({"lam_ref", "tau_ref", "t_ref", "rate", "next_level", "seed_rate"})


def per_row(value: ArrayLike, n: int, dtype: type) -> NDArray[Any]:
    """``value`` (one for all, or one per row) as a contiguous array of ``n`` values of ``dtype``."""
    a: NDArray[Any] = np.asarray(value, dtype=dtype)
    return np.full(n, a) if a.ndim == 0 else np.ascontiguousarray(a)


@functools.lru_cache(maxsize=16)
def first_size_ages(capacity_mm3: float) -> tuple[float, float]:
    """Gompertz ages at which a lesion reaches 1 mm and 2 mm in diameter."""
    one, two = (float(growth.age_at_volume(growth.volume_from_diameter(d), capacity_mm3)) for d in (1.0, 2.0))
    return one, two


@dataclass
class Lesions:
    """Growable column store of lesions (struct of arrays)."""

    n: int = 0
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    # each patient's rows as a chain in order of addition: first and last row per patient, next row per
    # row (-1 ends a chain), kept up to row _linked
    _linked: int = field(default=0, repr=False)
    _first: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _last: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _next: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    _count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def __post_init__(self) -> None:
        if not self.cols:
            self.cols = {k: np.empty(64, dtype=t) for k, t in _COLUMNS.items()}

    def rows_of(self, patients: I64) -> I64:
        """Rows of the lesions of ``patients`` (batch indices), ascending: what
        ``np.nonzero(mask[pid])[0]`` gives, without scanning every row.

        Each patient's rows form a chain in order of addition (:meth:`chains`).
        """
        first, next_row = self.chains()
        return _rows_of(np.ascontiguousarray(patients, dtype=np.int64), first, next_row, self._count, self.pid)

    def chains(self) -> tuple[I64, I64]:
        """Each patient's rows as a chain in order of addition: the first row of each patient (-1: none) and
        the next row of each row (-1: the last), extended by the rows added since the last call."""
        if self._linked < self.n:
            pid = self.pid
            size = int(pid[self._linked :].max()) + 1
            if size > len(self._first):
                grow = max(size, 2 * len(self._first)) - len(self._first)
                self._first = np.concatenate((self._first, np.full(grow, -1, np.int64)))
                self._last = np.concatenate((self._last, np.full(grow, -1, np.int64)))
                self._count = np.concatenate((self._count, np.zeros(grow, np.int64)))
            self._next = link_rows(pid[self._linked :], self._linked, len(self.cols["pid"]), self._first,
                                   self._last, self._next, self._count)
            self._linked = self.n
        return self._first, self._next

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("cols")
        if cols is not None and name in cols:
            return cols[name][: self.__dict__["n"]]
        raise AttributeError(name)

    def append(self, **new: np.ndarray) -> None:
        """Append rows given as equal-length arrays, one per column.

        Omitted segment columns default to a lesion growing from one cell since ``wake`` at ``rate``;
        omitted first-size and detection columns to "not yet".
        """
        m = len(new["pid"])
        new.setdefault("base_rate", new["rate"])
        new.setdefault("t_ref", new["wake"])
        for name in ("tau_ref", "lam_ref", "u_res", "det_by", "spine"):
            new.setdefault(name, np.zeros(m))
        for name in ("t_1mm", "t_2mm", "det_t", "det_d", "t_seed", "h_ref"):
            new.setdefault(name, np.full(m, np.nan))
        new.setdefault("suppressible", np.full(m, -1))
        need = self.n + m
        if need > len(self.cols["pid"]):
            cap = max(need, 2 * len(self.cols["pid"]))
            for k, arr in self.cols.items():
                grown = np.empty(cap, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[k] = grown
        for k in self.cols:
            self.cols[k][self.n : need] = new[k]
        self.n = need

    def set(self, name: str, index: np.ndarray, value: np.ndarray | float) -> None:
        """Assign ``value`` to column ``name`` at rows ``index``."""
        self.cols[name][: self.n][index] = value
        if name in _SEEDING_INPUTS:
            self.cols["t_seed"][: self.n][index] = np.nan
        if name == "tau_ref":
            self.cols["h_ref"][: self.n][index] = np.nan

    def tau_at(self, time_days: F64 | float, rows: I64 | None = None) -> F64:
        """Gompertz age of each lesion (or of ``rows``) at ``time_days``, within its current growth segment."""
        sl = slice(None) if rows is None else rows
        dt = np.maximum(np.asarray(time_days) - self.t_ref[sl], 0.0)
        return np.asarray(self.tau_ref[sl] + self.rate[sl] * dt, dtype=np.float64)

    def volume_at(self, time_days: F64 | float, capacity_mm3: float, rows: I64 | None = None) -> F64:
        """Volume (mm^3) at ``time_days`` (scalar or one per row); 0 while dormant and once ended."""
        r = np.arange(self.n) if rows is None else np.ascontiguousarray(rows, np.int64)
        t = np.ascontiguousarray(time_days, np.float64).reshape(-1)
        if t.size not in (1, r.size):
            raise ValueError(f"volume_at: {t.size} days for {r.size} rows")
        c = self.cols
        return _volumes(r, t, capacity_mm3, growth.log_ratio(capacity_mm3), c["wake"], c["ended"], c["t_ref"],
                        c["tau_ref"], c["rate"]).reshape(np.shape(rows) if rows is not None else (self.n,))

    def organ_burden(self, rows: I64, wanted: NDArray[np.bool_], time_days: float, capacity_mm3: float,
                     every: bool = False) -> tuple[I64, F64]:
        """Volume (mm^3) per organ at ``time_days`` of the lesions ``rows``, summed for each wanted patient
        who has one of them (``every``: for every wanted patient, zeros without one): the patients, ascending,
        and their burden, shape (patients, organs). Sums run in the order of ``rows``."""
        c = self.cols
        return _organ_burden(np.ascontiguousarray(rows, np.int64), wanted, every, float(time_days), capacity_mm3,
                             growth.log_ratio(capacity_mm3), N_ORGANS, c["pid"], c["organ"], c["wake"], c["ended"],
                             c["t_ref"], c["tau_ref"], c["rate"])

    def record_first_sizes(self, rows: I64, now_days: F64 | float, capacity_mm3: float) -> None:
        """Fill ``t_1mm``/``t_2mm`` of ``rows`` reached in the current segment by ``now_days``."""
        one, two = first_size_ages(capacity_mm3)
        c = self.cols
        now = per_row(now_days, rows.size, np.float64)
        record_first_sizes_rows(np.asarray(rows, np.int64), now, one, two, c["tau_ref"], c["rate"], c["t_ref"],
                                c["wake"], c["ended"], c["t_1mm"], c["t_2mm"])


def link_rows(key: I64, offset: int, capacity: int, first: I64, last: I64, next_row: I64, count: I64) -> I64:
    """Put rows ``offset .. offset + key.size - 1`` at the end of the chain of their key (``key[i]`` is row
    ``offset + i``'s): per key the first and last row (-1: none) and the rows (``count``, unless it is
    empty), per row the next row (-1 ends a chain). Returns ``next_row``, grown with -1 to ``capacity``
    rows when it is too short for them."""
    if offset + key.size > next_row.size:
        next_row = np.concatenate((next_row, np.full(capacity - next_row.size, -1, np.int64)))
    _link(np.ascontiguousarray(key, np.int64), offset, first, last, next_row, count)
    return next_row


@numba.njit(cache=True)
def _link(key: I64, offset: int, first: I64, last: I64, next_row: I64, count: I64) -> None:
    for i in range(key.size):
        r, q = offset + i, key[i]
        if last[q] < 0:
            first[q] = r
        else:
            next_row[last[q]] = r
        last[q] = r
        if count.size:
            count[q] += 1


@numba.njit(cache=True)
def _rows_of(patients: I64, first: I64, next_row: I64, count: I64, pid: I64) -> I64:
    # each wanted patient's chain once, however often she is listed; ascending as np.nonzero gives them
    n_known = first.size
    taken = np.zeros(n_known, np.bool_)
    total = 0
    for q in patients:
        if q < n_known and not taken[q]:
            taken[q] = True
            total += count[q]
    out = np.empty(total, np.int64)
    k = 0
    if 64 * total > pid.size:
        # many rows: one sequential pass over the patient column beats walking chains scattered over it
        for r in range(pid.size):
            q = pid[r]
            if taken[q]:
                out[k] = r
                k += 1
        return out
    for q in patients:
        if q < n_known and taken[q]:
            taken[q] = False
            r = first[q]
            while r >= 0:
                out[k] = r
                k += 1
                r = next_row[r]
    out.sort()
    return out


@numba.njit(cache=True, error_model="numpy")
def _organ_burden(rows: I64, wanted: NDArray[np.bool_], every: bool, t: float, cap: float, log_c: float,
                  n_organs: int, pid: I64, organ: NDArray[np.int8], wake: F64, ended: F64, t_ref: F64, tau_ref: F64,
                  rate: F64) -> tuple[I64, F64]:
    n = wanted.size
    slot = np.full(n, -1, np.int64)  # 0 marks a patient to report, then her position among them
    if every:
        for q in range(n):
            if wanted[q]:
                slot[q] = 0
    else:
        for r in rows:
            if wanted[pid[r]]:
                slot[pid[r]] = 0
    n_active = 0
    for q in range(n):
        if slot[q] == 0:
            slot[q] = n_active
            n_active += 1
        else:
            slot[q] = -1
    active = np.empty(n_active, np.int64)
    for q in range(n):
        if slot[q] >= 0:
            active[slot[q]] = q
    burden = np.zeros((n_active, n_organs))
    for r in rows:
        k = slot[pid[r]]
        if k >= 0:
            burden[k, organ[r]] += volume_one(t, wake[r], ended[r], t_ref[r], tau_ref[r], rate[r], cap, log_c)
    return active, burden


@numba.njit(cache=True, error_model="numpy")
def _volumes(rows: I64, t: F64, cap: float, log_c: float, wake: F64, ended: F64, t_ref: F64, tau_ref: F64,
             rate: F64) -> F64:
    # t: one day for all rows, or one per row
    out = np.empty(rows.size)
    for i in range(rows.size):
        r = rows[i]
        out[i] = volume_one(t[i] if t.size > 1 else t[0], wake[r], ended[r], t_ref[r], tau_ref[r], rate[r], cap, log_c)
    return out


@numba.njit(cache=True, error_model="numpy")
def volume_one(t: float, wake: float, ended: float, t_ref: float, tau_ref: float, rate: float, cap: float,
               log_c: float) -> float:
    """:meth:`Lesions.volume_at` of one lesion (its columns' values) for compiled code: mm^3, 0 while dormant
    and once ended; ``log_c`` is :func:`growth.log_ratio` of the capacity ``cap``. Scalars only, so that
    callers' loops compile it inline (array arguments would cost a reference count per call)."""
    if not (t >= wake and t < ended):
        return 0.0
    dt = t - t_ref
    if dt < 0.0:
        dt = 0.0
    return growth.volume_at_age_one(tau_ref + rate * dt, cap, log_c)


@numba.njit(cache=True, error_model="numpy")
def record_first_sizes_rows(rows: I64, now: F64, tau_one: float, tau_two: float, tau_ref: F64, rate: F64,
                            t_ref: F64, wake: F64, ended: F64, t_1mm: F64, t_2mm: F64) -> None:
    """:meth:`Lesions.record_first_sizes` for compiled code (``now`` one day per row; ``tau_one``, ``tau_two``
    from :func:`first_size_ages`): the first day the Gompertz age reaches 1 and 2 mm in the current
    segment, if that is by ``now`` and before the lesion ended. Plain arithmetic, no temporaries (called
    at every segment change and end)."""
    for i in range(rows.size):
        r = rows[i]
        if wake[r] > now[i]:  # dormant: its segment starts after now
            continue
        start = t_ref[r] if t_ref[r] >= wake[r] else wake[r]
        for target, col in ((tau_one, t_1mm), (tau_two, t_2mm)):
            if np.isnan(col[r]):
                t_hit = start if tau_ref[r] >= target else start + (target - tau_ref[r]) / rate[r]
                if t_hit <= now[i] and t_hit < ended[r]:
                    col[r] = t_hit


def _column(name: str) -> property:
    def get(self: Lesions) -> np.ndarray:
        return self.cols[name][: self.n]

    return property(get, doc=f"Column ``{name}`` of the stored rows.")


# Columns as properties: found before ``__getattr__`` (which stays for type checkers), a hot path.
for _name in _COLUMNS:
    setattr(Lesions, _name, _column(_name))


def end_lesions(lesions: Lesions, rows: I64, time_days: F64 | float, reason: str, capacity_mm3: float) -> None:
    """Mark lesions ended at ``time_days`` with an ``end_reason`` of SPEC (only those still alive then),
    first recording the sizes they reached before it (``t_1mm``, ``t_2mm``)."""
    if rows.size == 0:
        return
    t = per_row(time_days, rows.size, np.float64)
    alive = lesions.ended[rows] > t
    lesions.record_first_sizes(rows[alive], t[alive], capacity_mm3)
    lesions.set("ended", rows[alive], t[alive])
    lesions.set("end_reason", rows[alive], END_CODE[reason])


def _pair_rows(lesions: Lesions, pid: I64, organ: NDArray[np.int8]) -> tuple[I64, I64]:
    """The lesion rows in given (patient, organ) pairs, ascending, and the pair of each."""
    key = lesions.pid * N_ORGANS + lesions.organ
    pair_key = pid * N_ORGANS + organ
    order = np.argsort(pair_key)
    sorted_keys = pair_key[order]
    pos = np.searchsorted(sorted_keys, key)
    pos = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    match = (sorted_keys[pos] == key) if len(sorted_keys) else np.zeros(len(key), bool)
    rows = np.nonzero(match)[0]
    return rows, order[pos[rows]]


def crossing_days(lesions: Lesions, pid: I64, organ: NDArray[np.int8], threshold_mm3: F64, lo_days: F64,
                  hi_days: F64, capacity_mm3: float, iterations: int = 40) -> F64:
    """Day the burden of each (patient, organ) pair first exceeds its threshold within [lo, hi].

    Burden only grows while no lesion ends, so bisection finds the crossing (to about a day in 40 steps
    over decades).
    """
    rows, pair = _pair_rows(lesions, pid, organ)
    c = lesions.cols
    return bisect_crossings(pair, c["wake"][rows], c["ended"][rows], c["t_ref"][rows], c["tau_ref"][rows],
                            c["rate"][rows], threshold_mm3, lo_days, hi_days, capacity_mm3, iterations)


def bisect_crossings(pair: I64, wake: F64, ended: F64, t_ref: F64, tau_ref: F64, rate: F64, threshold_mm3: F64,
                     lo_days: F64, hi_days: F64, capacity_mm3: float, iterations: int = 40) -> F64:
    """Bisection for the day each pair's burden first exceeds ``threshold_mm3`` within [lo, hi], from the
    growth segments of its lesions (one row per lesion, ``pair`` its pair): ``hi`` after ``iterations``
    halvings."""
    f = _contiguous
    return _bisect(np.ascontiguousarray(pair, np.int64), f(wake), f(ended), f(t_ref), f(tau_ref), f(rate),
                   f(threshold_mm3), f(lo_days), f(hi_days), capacity_mm3, growth.log_ratio(capacity_mm3), iterations)


def pair_burden(pair: I64, time_days: F64, wake: F64, ended: F64, t_ref: F64, tau_ref: F64, rate: F64,
                capacity_mm3: float) -> F64:
    """Burden (mm^3) of each pair at its own day (``time_days`` one per pair), from its lesions' segments."""
    f = _contiguous
    return _pair_burden(np.ascontiguousarray(pair, np.int64), f(time_days), f(wake), f(ended), f(t_ref), f(tau_ref),
                        f(rate), capacity_mm3, growth.log_ratio(capacity_mm3))


def _contiguous(x: F64) -> F64:
    return np.ascontiguousarray(x, np.float64)


@numba.njit(cache=True, error_model="numpy")
def _pair_burden(pair: I64, t: F64, wake: F64, ended: F64, t_ref: F64, tau_ref: F64, rate: F64, cap: float,
                 log_c: float) -> F64:
    out = np.zeros(t.size)
    for i in range(pair.size):
        j = pair[i]
        out[j] += volume_one(t[j], wake[i], ended[i], t_ref[i], tau_ref[i], rate[i], cap, log_c)
    return out


@numba.njit(cache=True, error_model="numpy")
def _bisect(pair: I64, wake: F64, ended: F64, t_ref: F64, tau_ref: F64, rate: F64, threshold: F64, lo: F64,
            hi: F64, cap: float, log_c: float, iterations: int) -> F64:
    lo, hi = lo.copy(), hi.copy()
    mid = np.empty(lo.size)
    for _ in range(iterations):
        for j in range(lo.size):
            mid[j] = 0.5 * (lo[j] + hi[j])
        burden = _pair_burden(pair, mid, wake, ended, t_ref, tau_ref, rate, cap, log_c)
        for j in range(lo.size):
            if burden[j] > threshold[j]:
                hi[j] = mid[j]
            else:
                lo[j] = mid[j]
    return hi
