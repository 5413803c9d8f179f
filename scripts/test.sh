#!/usr/bin/env bash
# The whole test suite, with lint and type checks, in .venv. Extra arguments go to pytest.
EXTRAS="[test]" source "$(dirname "$0")/_venv.sh"
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
# The report's browser test renders it with Debian's chromium (never a downloaded browser).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null \
            || echo "warning: chromium: apt-get install failed; the browser test will be skipped" >&2
    else
        echo "note: chromium: not installed and not root; the browser test will be skipped" >&2
    fi
fi
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
    echo "error: tests: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
