#!/usr/bin/env bash
# Static checks: ruff (lint + format) and mypy --strict over the package, tests, benchmarks and scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m ruff check oneeye tests bench scripts
"$PY" -m ruff format --check oneeye tests bench scripts
"$PY" -m mypy
