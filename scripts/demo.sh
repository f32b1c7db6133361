#!/usr/bin/env bash
# The demo on embedded defaults: the stack is up (make up); this shows where things are.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m fraud.stack status
echo
echo "The stack is running. Stop it with: make down"
