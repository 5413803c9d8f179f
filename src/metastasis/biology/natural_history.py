"""How the lesions of a batch of patients come to be (MODEL.md 2-3).

:func:`start` builds each patient's primary and nodal deposits in a :class:`~metastasis.biology.lesions.Lesions`
store; a lesion grows by Gompertz from one cell from ``wake`` (the end of dormancy) until ``ended``, its
Gompertz age ``rate * (t - wake)``. :func:`seed_until` extends the seeding tree to a time limit per patient by
inverting each tumour's cumulative seeding curve, one colony per tumour per pass, so the result does not
depend on how the time line is cut into windows.

Random numbers: the k-th colony of lesion L draws with key ``L`` and counters ``8k + j``
(j = 0 organ, 1 dormancy, 2 growth, 3 the next seeding level of L), all from the natural-history stream.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from metastasis import streams
from metastasis.biology import cascade, growth
from metastasis.biology.dissemination import SeedingCurve, dormancy_exit_rates, dormancy_shapes, tropism_matrix
from metastasis.biology.lesions import Lesions, per_row
from metastasis.cohort import Patients
from metastasis.streams import Process
from metastasis.vocabulary import ORGAN_CODE, ORIGIN_CODE

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


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
    dormancy: F64  # exit rate, per day, subtype x organ (1 / mean dormancy)
    dormancy_shape: F64  # Weibull shape, per subtype
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
        dormancy_shape=dormancy_shapes(values),
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

    organ_arr = per_row(organ, m, np.int8)
    nan = np.full(m, np.nan)
    # a spinal site only matters for bone: draw it there only (the draw is keyed, so values do not change)
    spine = organ_arr == ORGAN_CODE["bone"]
    bone = np.nonzero(spine)[0]
    if bone.size:
        spine[bone] = u(6, bone) < hist.values["radiotherapy.spine_share_of_bone"]
    return {
        "pid": pid, "lid": lid, "organ": organ_arr, "origin": np.full(m, origin),
        "parent": parent, "seeded": seeded, "wake": wake, "base_rate": rate, "rate": rate, "seed_rate": seed_rate,
        "t_ref": wake, "tau_ref": per_row(tau, m, np.float64), "lam_ref": np.zeros(m),
        "next_level": -np.log(u(3)) if next_level is None else next_level,
        "n_children": np.zeros(m, np.int32) if n_children is None else n_children, "ended": np.full(m, np.inf),
        "end_reason": np.zeros(m, np.int8), "u_res": u(5),
        "spine": spine,
        "t_1mm": nan, "t_2mm": nan.copy(), "det_t": nan.copy(), "det_by": np.zeros(m, np.int8),
        "det_d": nan.copy(),
    }


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
        v["dissemination.cluster_mean"], taus, log_h, scalars,
        c["pid"], c["lid"], c["ended"], c["t_ref"], c["tau_ref"], c["rate"], c["seed_rate"],
        c["lam_ref"], c["h_ref"], c["next_level"], c["n_children"], c["t_seed"],
        hist.patient_id, hist.subtype, hist.primary_rate, hist.seed_rate, hist.tropism_cdf, hist.dormancy,
        hist.dormancy_shape, hist.colonies, hist.next_lid)
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
