"""The lesions of a batch of patients and how they come to be (MODEL.md 2-3).

:class:`Lesions` holds every tumour of a batch as column arrays: the primary (id 0), the regional nodal
deposits (ids 1..N) and the colonies that tumours seed (ids in order of creation per patient). A lesion
grows by Gompertz from one cell from ``wake`` (the end of dormancy) until ``ended``; its Gompertz age is
``rate * (t - wake)``. :func:`seed_until` extends the seeding tree to a time limit per patient by
inverting each tumour's cumulative seeding curve, one colony per tumour per pass, so the result does not
depend on how the time line is cut into windows.

Random numbers: the k-th colony of lesion L draws with key ``L`` and counters ``8k + j``
(j = 0 organ, 1 dormancy, 2 growth, 3 the next seeding level of L), all from the natural-history stream.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numba
import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.biology import cascade, growth
from metastasis.biology.dissemination import SeedingCurve, dormancy_exit_rates, tropism_matrix
from metastasis.cohort import Patients
from metastasis.streams import Process
from metastasis.vocabulary import END_CODE, N_ORGANS, ORGAN_CODE, ORIGIN_CODE

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


@functools.lru_cache(maxsize=16)
def _first_size_ages(capacity_mm3: float) -> tuple[float, float]:
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
        return _rows_of(np.ascontiguousarray(patients, dtype=np.int64), first, next_row, self._count)

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
            if self.n > len(self._next):
                extra = np.full(len(self.cols["pid"]) - len(self._next), -1, np.int64)
                self._next = np.concatenate((self._next, extra))
            _link(pid, self._linked, self._first, self._last, self._next, self._count)
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
        sl = slice(None) if rows is None else rows
        t = np.asarray(time_days)
        alive = (t >= self.wake[sl]) & (t < self.ended[sl])
        return np.where(alive, growth.volume_at_age(self.tau_at(t, rows), capacity_mm3), 0.0)

    def organ_burden(self, rows: I64, wanted: NDArray[np.bool_], time_days: float, capacity_mm3: float,
                     every: bool = False) -> tuple[I64, F64]:
        """Volume (mm^3) per organ at ``time_days`` of the lesions ``rows``, summed for each wanted patient
        who has one of them (``every``: for every wanted patient, zeros without one): the patients, ascending,
        and their burden, shape (patients, organs). Sums run in the order of ``rows``."""
        c = self.cols
        return _organ_burden(np.ascontiguousarray(rows, np.int64), wanted, every, float(time_days), capacity_mm3,
                             growth.log_ratio(capacity_mm3), N_ORGANS, c["pid"], c["organ"], c["wake"], c["ended"],
                             c["t_ref"], c["tau_ref"], c["rate"])

    def cells_at(self, time_days: F64 | float, capacity_mm3: float, rows: I64 | None = None) -> F64:
        """Number of cells (at least 1 while alive and awake, 0 otherwise)."""
        v = self.volume_at(time_days, capacity_mm3, rows)
        return np.where(v > 0, np.maximum(np.round(v * growth.CELLS_PER_MM3), 1.0), 0.0)

    def record_first_sizes(self, rows: I64, now_days: F64 | float, capacity_mm3: float) -> None:
        """Fill ``t_1mm``/``t_2mm`` of ``rows`` reached in the current segment by ``now_days``."""
        now = np.broadcast_to(np.asarray(now_days, dtype=np.float64), rows.shape)
        one, two = _first_size_ages(capacity_mm3)
        c = self.cols
        _record_first_sizes(np.asarray(rows, np.int64), now, one, two, c["tau_ref"], c["rate"], c["t_ref"], c["wake"],
                            c["ended"], c["t_1mm"], c["t_2mm"])


@numba.njit(cache=True)
def _link(pid: I64, start: int, first: I64, last: I64, next_row: I64, count: I64) -> None:
    for r in range(start, pid.size):
        q = pid[r]
        if last[q] < 0:
            first[q] = r
        else:
            next_row[last[q]] = r
        last[q] = r
        count[q] += 1


@numba.njit(cache=True)
def _rows_of(patients: I64, first: I64, next_row: I64, count: I64) -> I64:
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
    slot = np.full(n, -1, np.int64)
    for q in range(n):
        if every and wanted[q]:
            slot[q] = 0
    if not every:
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
    tau = tau_ref + rate * dt
    if tau < 0.0:
        tau = 0.0
    return cap * np.exp(log_c * np.exp(-tau))


@numba.njit(cache=True, error_model="numpy")
def _record_first_sizes(rows: I64, now: F64, tau_one: float, tau_two: float, tau_ref: F64, rate: F64, t_ref: F64,
                        wake: F64, ended: F64, t_1mm: F64, t_2mm: F64) -> None:
    # One pass, no temporaries (called at every segment change and end). Plain arithmetic and comparisons
    # only: the first day the Gompertz age reaches the target in the current segment, if that is by
    # ``now`` and before the lesion ended.
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


@dataclass(frozen=True)
class History:
    """What the seeding process needs to know about a batch (per-patient arrays and model constants)."""

    seed: int
    patient_id: I64
    subtype: NDArray[np.int8]
    primary_rate: F64  # Gompertz a of the primary, per day
    seed_rate: F64  # m of the primary: mu * A^beta_s
    values: dict[str, float]
    curve: SeedingCurve
    tropism: F64
    dormancy: F64
    colonies: I64  # colonies created so far, per patient (mutated)
    next_lid: I64  # next free lesion id, per patient (mutated)

    @property
    def capacity_mm3(self) -> float:
        return self.curve.capacity_mm3

    @functools.cached_property
    def tropism_cdf(self) -> F64:
        """Cumulative organ probabilities by subtype: a colony's organ is drawn by inverting its row."""
        return np.ascontiguousarray(np.cumsum(self.tropism, axis=1))

    def lam_at(self, lesions: Lesions, rows: I64, time_days: F64 | float) -> F64:
        """Expected colonies founded by ``rows`` up to ``time_days`` (cumulative seeding level)."""
        rate = lesions.rate[rows]
        tau1 = lesions.tau_at(time_days, rows)
        grow = lesions.seed_rate[rows] / rate * self.curve.rate_scale * (self.curve.h(tau1) - self.h_ref(lesions, rows))
        return np.asarray(lesions.lam_ref[rows] + np.where(np.asarray(time_days) > lesions.t_ref[rows], grow, 0.0))

    def h_ref(self, lesions: Lesions, rows: I64) -> F64:
        """``H(tau_ref)`` of ``rows``: the seeding curve at the start of their growth segment (cached)."""
        h = lesions.h_ref[rows]
        stale = np.nonzero(np.isnan(h))[0]
        if stale.size:
            h[stale] = self.curve.h(lesions.tau_ref[rows[stale]])
            lesions.cols["h_ref"][rows[stale]] = h[stale]
        return h

    def new_segment(self, lesions: Lesions, rows: I64, time_days: float, tau: F64, rate: F64) -> None:
        """Start a new growth segment at ``time_days`` for awake ``rows``: Gompertz age ``tau``, ``rate``.

        The seeding level is carried over, so a therapy changes how fast a tumour seeds, never the
        colonies it has already founded. First-size days are recorded before the change.
        """
        if rows.size == 0:
            return
        lesions.record_first_sizes(rows, time_days, self.capacity_mm3)
        lesions.set("lam_ref", rows, self.lam_at(lesions, rows, time_days))
        lesions.set("tau_ref", rows, tau)
        lesions.set("t_ref", rows, time_days)
        lesions.set("rate", rows, rate)


def start(patients: Patients, values: dict[str, float], seed: int) -> tuple[History, Lesions]:
    """The primary tumour and the regional nodal deposits of every patient, reconstructed back from diagnosis.

    The primary is born from one cell ``tau_dx / a`` days before diagnosis, where ``tau_dx`` is the
    Gompertz age of its diameter at diagnosis. The N positive nodes were seeded by the primary: given N,
    their seeding times are N draws from the primary's seeding density before diagnosis (order statistics
    of a Poisson process conditioned on its count).
    """
    capacity = values["growth.carrying_capacity_mm3"]
    curve = SeedingCurve(capacity, values["dissemination.gamma"])
    n = len(patients)
    a_p = growth.rate_from_doubling(patients.doubling_days, growth.volume_from_diameter(15.0), capacity)
    # mu is stated at 10^9 cells (1 cm^3): the rate per cell^gamma is mu * 10^(-9 gamma)
    m_p = (values["dissemination.mu"] * 1e9 ** (-values["dissemination.gamma"])
           * patients.aggressiveness ** values["aggressiveness.beta_seeding"])
    tau_dx = growth.age_at_volume(growth.volume_from_diameter(patients.tumour_diameter_mm), capacity)
    birth = -tau_dx / a_p
    nodes = patients.nodes_positive.astype(np.int64)
    hist = History(
        seed=seed,
        patient_id=patients.patient_id,
        subtype=patients.subtype,
        primary_rate=a_p,
        seed_rate=m_p,
        values=values,
        curve=curve,
        tropism=tropism_matrix(values),
        dormancy=dormancy_exit_rates(values),
        colonies=np.zeros(n, dtype=np.int64),
        next_lid=1 + nodes,
    )
    lesions = Lesions()
    pid = np.arange(n, dtype=np.int64)
    lesions.append(**_new_rows(hist, pid, np.zeros(n, np.int64), ORIGIN_CODE["primary"], ORGAN_CODE["breast"],
                               -np.ones(n, np.int64), birth, birth, a_p, m_p))
    # nodal deposits: j-th node of a patient keyed by -(j + 1) (never a lesion id)
    node_pid = np.repeat(pid, nodes)
    j = np.arange(len(node_pid)) - np.repeat(np.cumsum(nodes) - nodes, nodes)
    gid = patients.patient_id[node_pid]
    level = streams.uniform(seed, Process.NATURAL_HISTORY, gid, -(j + 1), 0) * curve.h(tau_dx[node_pid])
    seeded = birth[node_pid] + curve.tau_at(level) / a_p[node_pid]
    lesions.append(**_new_rows(hist, node_pid, 1 + j, ORIGIN_CODE["nodal"], ORGAN_CODE["regional_nodes"],
                               np.zeros(len(node_pid), np.int64), seeded, seeded, a_p[node_pid], m_p[node_pid]))
    return hist, lesions


def _new_rows(
    hist: History, pid: I64, lid: I64, origin: int, organ: int | NDArray[np.int8], parent: I64,
    seeded: F64, wake: F64, rate: F64, seed_rate: F64, tau: F64 | float = 0.0, next_level: F64 | None = None,
    n_children: NDArray[np.int32] | None = None,
) -> dict[str, np.ndarray]:
    """Columns of new lesions growing from Gompertz age ``tau`` (one cell: 0) from ``wake``; ``next_level``
    and ``n_children`` when they have seeded already (default: the first level drawn, no children)."""
    m = len(pid)
    gid = hist.patient_id[pid]

    def u(j: int, at: I64 | slice = slice(None)) -> F64:
        return streams.uniform(hist.seed, Process.NATURAL_HISTORY, gid[at], lid[at], j)

    organ_arr = np.broadcast_to(np.asarray(organ, dtype=np.int8), (m,))
    nan = np.full(m, np.nan)
    # a spinal site only matters for bone: draw it there only (the draw is keyed, so values do not change)
    spine = organ_arr == ORGAN_CODE["bone"]
    bone = np.nonzero(spine)[0]
    if bone.size:
        spine[bone] = u(6, bone) < hist.values["radiotherapy.spine_share_of_bone"]
    return {
        "pid": pid, "lid": lid, "organ": organ_arr, "origin": np.full(m, origin),
        "parent": parent, "seeded": seeded, "wake": wake, "base_rate": rate, "rate": rate, "seed_rate": seed_rate,
        "t_ref": wake, "tau_ref": np.broadcast_to(np.asarray(tau, dtype=np.float64), (m,)), "lam_ref": np.zeros(m),
        "next_level": -np.log(u(3)) if next_level is None else next_level,
        "n_children": np.zeros(m, np.int32) if n_children is None else n_children, "ended": np.full(m, np.inf),
        "end_reason": np.zeros(m, np.int8), "u_res": u(5),
        "spine": spine,
        "t_1mm": nan, "t_2mm": nan.copy(), "det_t": nan.copy(), "det_by": np.zeros(m, np.int8),
        "det_d": nan.copy(),
    }


def _column(name: str) -> property:
    def get(self: Lesions) -> np.ndarray:
        return self.cols[name][: self.n]

    return property(get, doc=f"Column ``{name}`` of the stored rows.")


# Columns as properties: found before ``__getattr__`` (which stays for type checkers), a hot path.
for _name in _COLUMNS:
    setattr(Lesions, _name, _column(_name))


def add_lesions(hist: History, lesions: Lesions, pid: I64, origin: str, organ: int, parent: I64, time_days: float,
                cells: F64, rate: F64, seed_rate: F64) -> I64:
    """Add awake lesions of ``cells`` cells at ``time_days`` (residual disease); returns their rows."""
    lid = hist.next_lid[pid].copy()
    np.add.at(hist.next_lid, pid, 1)
    tau = growth.age_at_volume(np.maximum(cells, 1.0) / growth.CELLS_PER_MM3, hist.capacity_mm3)
    t = np.full(len(pid), time_days)
    first = lesions.n
    lesions.append(**_new_rows(hist, pid, lid, ORIGIN_CODE[origin], organ, parent, t, t, rate, seed_rate, tau))
    return np.arange(first, lesions.n)


def seed_until(hist: History, lesions: Lesions, until_days: F64, rows: I64 | None = None) -> None:
    """Found every colony seeded before ``until_days`` (one limit per patient), cascades included.

    A tumour seeds while awake and not ended; the cumulative expected count at Gompertz age tau is
    ``(m / a) (K cells)^gamma H(tau)``, so the k-th colony appears where that count first reaches the
    sum of k+1 unit exponentials. Past ``engine.max_colonies_per_patient`` a patient's tumours stop
    seeding (her burden is then far beyond what is survivable). ``rows`` limits the tumours considered
    (default: all); colonies founded here are always considered.
    """
    v = hist.values
    rows = np.arange(lesions.n) if rows is None else rows
    until_days = np.ascontiguousarray(until_days, np.float64)
    rows = _may_seed(hist, lesions, np.ascontiguousarray(rows, np.int64), until_days)
    if rows.size == 0:
        return
    n = lesions.n
    c = {k: lesions.cols[k][:n] for k in _CASCADE_COLUMNS}
    taus, log_h, scalars = hist.curve.tables()
    new = cascade.run_cascade(
        rows, until_days,
        int(v["engine.max_colonies_per_patient"]), streams.stream_head(hist.seed, Process.NATURAL_HISTORY),
        v["dissemination.secondary_scale"], v["growth.metastasis_factor"], v["growth.lesion_log_sd"],
        taus, log_h, scalars, c["pid"], c["lid"], c["ended"], c["t_ref"], c["tau_ref"], c["rate"], c["seed_rate"],
        c["lam_ref"], c["h_ref"], c["next_level"], c["n_children"], c["t_seed"],
        hist.patient_id, hist.subtype, hist.primary_rate, hist.seed_rate, hist.tropism_cdf, hist.dormancy,
        hist.colonies, hist.next_lid)
    pid, lid, organ, parent, seeded, wake, rate, seed_rate, level, children = new
    if pid.size == 0:
        return
    lesions.append(**_new_rows(hist, pid, lid, ORIGIN_CODE["seeded"], organ, parent, seeded, wake, rate, seed_rate,
                               next_level=level, n_children=children))


#: Lesion columns the compiled cascade reads and updates.
_CASCADE_COLUMNS = ("pid", "lid", "ended", "t_ref", "tau_ref", "rate", "seed_rate", "lam_ref", "h_ref",
                    "next_level", "n_children", "t_seed")


#: Slack (days) of the pre-filter on the next seeding day; the exact level test decides.
_SEED_SLACK_DAYS = 1.0


def _may_seed(hist: History, lesions: Lesions, rows: I64, until_days: F64) -> I64:
    """The ``rows`` that may found a colony before their limit: a cheap filter on each tumour's cached next
    seeding day (recomputed where a segment or level changed), so most tumours skip the level test."""
    c = lesions.cols
    return cascade.may_seed(rows, until_days, _SEED_SLACK_DAYS, *hist.curve.tables(), c["pid"], c["ended"], c["t_ref"],
                            c["tau_ref"], c["rate"], c["seed_rate"], c["lam_ref"], c["h_ref"], c["next_level"],
                            c["t_seed"])


def end_lesions(lesions: Lesions, rows: I64, time_days: F64 | float, reason: str, capacity_mm3: float) -> None:
    """Mark lesions ended at ``time_days`` with an ``end_reason`` of SPEC (only those still alive then),
    first recording the sizes they reached before it (``t_1mm``, ``t_2mm``)."""
    if rows.size == 0:
        return
    t = np.broadcast_to(np.asarray(time_days, dtype=np.float64), rows.shape)
    alive = lesions.ended[rows] > t
    lesions.record_first_sizes(rows[alive], t[alive], capacity_mm3)
    lesions.set("ended", rows[alive], t[alive])
    lesions.set("end_reason", rows[alive], END_CODE[reason])


def organ_burden(lesions: Lesions, time_days: F64, n_patients: int, capacity_mm3: float) -> F64:
    """Total lesion volume (mm^3) per patient and organ at one time per patient: shape (n, 8)."""
    v = lesions.volume_at(time_days[lesions.pid], capacity_mm3)
    flat = np.bincount(lesions.pid * N_ORGANS + lesions.organ, weights=v, minlength=n_patients * N_ORGANS)
    return np.asarray(flat, dtype=np.float64).reshape(n_patients, N_ORGANS)


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
    lo, hi = lo_days.astype(np.float64).copy(), hi_days.astype(np.float64).copy()
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        v = lesions.volume_at(mid[pair], capacity_mm3, rows)
        over = np.bincount(pair, weights=v, minlength=len(pid)) > threshold_mm3
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    return hi
