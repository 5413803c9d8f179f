#!/usr/bin/env bash
# The whole test suite, with lint and type checks, in .venv. Extra arguments go to pytest.
EXTRAS="[test]" source "$(dirname "$0")/_venv.sh"
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "error: tests: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
