"""The lesion store: rows by patient as a full scan gives them, while the store grows."""

from __future__ import annotations

import numpy as np

from metastasis.biology import lesions as ls


def _append(store: ls.Lesions, pid: np.ndarray) -> None:
    m = len(pid)
    zeros = np.zeros(m)
    store.append(pid=pid, lid=np.arange(m), organ=np.zeros(m, np.int8), origin=np.zeros(m, np.int8),
                 parent=np.zeros(m, np.int64), seeded=zeros, wake=zeros, rate=zeros + 1e-3, seed_rate=zeros,
                 next_level=zeros + np.inf, n_children=np.zeros(m, np.int32), ended=zeros + np.inf,
                 end_reason=np.zeros(m, np.int8))


def test_rows_of_patients_equal_a_full_scan_as_rows_are_added() -> None:
    rng = np.random.default_rng(5)
    store = ls.Lesions()
    n_patients = 3000
    for size in (5000, 10, 300, 2000, 1, 7000):  # some additions re-index, some stay in the unindexed tail
        _append(store, rng.integers(0, n_patients, size))
        for k in (0, 1, 50, 2999):
            patients = rng.integers(0, n_patients + 5, k)  # repeats, and patients without lesions
            mask = np.zeros(n_patients + 5, bool)
            mask[patients] = True
            expected = np.nonzero(mask[store.pid])[0]
            np.testing.assert_array_equal(store.rows_of(patients), expected)
            np.testing.assert_array_equal(store.rows_of(np.unique(patients)), expected)  # sorted: no sort


def test_ending_a_lesion_records_the_sizes_it_reached_before() -> None:
    """A lesion resected or ended between two records keeps the days it reached 1 and 2 mm (closed form:
    Gompertz age tau = a t from one cell), and none it would only have reached after its end."""
    from metastasis.biology import growth

    capacity = 1e6
    store = ls.Lesions()
    _append(store, np.array([0, 1]))  # growing from one cell at day 0, rate 1e-3 per day
    tau_2mm = float(growth.age_at_volume(growth.volume_from_diameter(2.0), capacity))
    t_2mm = tau_2mm / 1e-3
    ls.end_lesions(store, np.array([0]), t_2mm + 1.0, "resected", capacity)
    ls.end_lesions(store, np.array([1]), t_2mm - 1.0, "resected", capacity)
    tau_1mm = float(growth.age_at_volume(growth.volume_from_diameter(1.0), capacity))
    np.testing.assert_allclose(store.t_1mm, [tau_1mm / 1e-3] * 2)
    np.testing.assert_allclose(store.t_2mm[0], t_2mm)
    assert np.isnan(store.t_2mm[1])
