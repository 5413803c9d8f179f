"""The lesion store: rows by patient as a full scan gives them, while the store grows."""

from __future__ import annotations

import numpy as np

from metastasis.biology import natural_history as nh


def _append(store: nh.Lesions, pid: np.ndarray) -> None:
    m = len(pid)
    zeros = np.zeros(m)
    store.append(pid=pid, lid=np.arange(m), organ=np.zeros(m, np.int8), origin=np.zeros(m, np.int8),
                 parent=np.zeros(m, np.int64), seeded=zeros, wake=zeros, rate=zeros + 1e-3, seed_rate=zeros,
                 next_level=zeros + np.inf, n_children=np.zeros(m, np.int32), ended=zeros + np.inf,
                 end_reason=np.zeros(m, np.int8))


def test_rows_of_patients_equal_a_full_scan_as_rows_are_added() -> None:
    rng = np.random.default_rng(5)
    store = nh.Lesions()
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
