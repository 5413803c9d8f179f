"""Calibration and validation against the published tables in ``data/targets/`` and the GBSG2 cohort.

:mod:`.settings` simulates the settings the figures come from (in memory), :mod:`.targets` and
:mod:`.gbsg2` compute each published figure from the simulated tables, :mod:`.validate` applies the
tolerance rule (``metastasis validate``), :mod:`.calibrate` fits the calibrated parameters by ABC-SMC
(``metastasis calibrate``) and :mod:`.posterior` reads the posterior sample shipped with the package.
"""
