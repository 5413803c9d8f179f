#!/usr/bin/env bash
# Simulate the default scenario (100,000 patients) into runs/default, print its summary and write its
# HTML report (runs/default/report.html).
EXTRAS="" source "$(dirname "$0")/_venv.sh"
.venv/bin/metastasis simulate default --patients "${PATIENTS:-100000}" --out runs/default --force
.venv/bin/metastasis report runs/default
