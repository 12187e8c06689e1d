#!/usr/bin/env bash
# Install OneEye with its test dependencies into .venv, run the static checks, run every test.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
scripts/lint.sh
# pytest exits 5 when it collected no tests: that is a failure here, as is any other non-zero.
.venv/bin/python -m pytest "$@"
