#!/usr/bin/env bash
# Static checks: ruff (lint + format) and mypy --strict over the package, tests and benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m mypy
