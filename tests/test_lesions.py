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
        for k in (0, 1, 50, 2999):  # few rows walk the chains; many (50 patients on) scan the patient column
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


def test_organ_burden_sums_each_patients_volumes_by_organ() -> None:
    """The compiled burden equals the volumes of the lesion store summed per (patient, organ); a patient
    without a listed lesion is left out unless every wanted patient is asked for."""
    rng = np.random.default_rng(8)
    capacity = 1e6
    store = ls.Lesions()
    m = 500
    pid = rng.integers(0, 40, m)
    zeros = np.zeros(m)
    store.append(pid=pid, lid=np.arange(m), organ=rng.integers(0, 8, m).astype(np.int8),
                 origin=np.zeros(m, np.int8), parent=np.zeros(m, np.int64), seeded=zeros,
                 wake=rng.uniform(0, 400, m), rate=rng.uniform(1e-3, 1e-2, m), seed_rate=zeros,
                 next_level=zeros + np.inf, n_children=np.zeros(m, np.int32),
                 ended=np.where(rng.random(m) < 0.2, rng.uniform(0, 600, m), np.inf), end_reason=np.zeros(m, np.int8))
    rows = np.sort(rng.choice(m, 300, replace=False))
    wanted = np.zeros(45, bool)
    wanted[rng.choice(45, 30, replace=False)] = True
    t = 500.0
    expected = np.zeros((45, 8))
    np.add.at(expected, (pid[rows], store.organ[rows]), store.volume_at(t, capacity, rows))
    active, burden = store.organ_burden(rows, wanted, t, capacity)
    np.testing.assert_array_equal(active, np.nonzero(wanted & np.isin(np.arange(45), pid[rows]))[0])
    np.testing.assert_allclose(burden, expected[active], rtol=1e-13)
    every, burden_all = store.organ_burden(rows, wanted, t, capacity, every=True)
    np.testing.assert_array_equal(every, np.nonzero(wanted)[0])
    np.testing.assert_allclose(burden_all, expected[every], rtol=1e-13)


def test_crossing_day_of_one_lesion_is_the_gompertz_closed_form() -> None:
    """One lesion growing from one cell at rate a from its wake day w crosses volume V at
    w + tau(V) / a; the bisection over 40 halvings of 10,000 days finds it to a hundredth of a day."""
    from metastasis.biology import growth

    capacity, rate, wake = 1e6, 2e-3, 100.0
    store = ls.Lesions()
    _append(store, np.array([0]))
    store.set("wake", np.array([0]), wake)
    store.set("t_ref", np.array([0]), wake)
    store.set("rate", np.array([0]), rate)
    threshold = 1000.0
    day = ls.crossing_days(store, np.array([0]), np.array([0], np.int8), np.array([threshold]), np.array([0.0]),
                           np.array([10_000.0]), capacity)
    exact = wake + float(growth.age_at_volume(threshold, capacity)) / rate
    assert abs(day[0] - exact) < 0.01


def test_per_row_repeats_a_scalar_and_keeps_an_array() -> None:
    from metastasis.biology.lesions import per_row

    a = per_row(2.5, 4, np.float64)
    assert a.dtype == np.float64 and a.tolist() == [2.5] * 4 and a.flags.c_contiguous
    b = per_row(np.arange(8)[::2], 4, np.int8)  # a strided view becomes a contiguous copy
    assert b.dtype == np.int8 and b.tolist() == [0, 2, 4, 6] and b.flags.c_contiguous
