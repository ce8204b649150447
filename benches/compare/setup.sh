#!/usr/bin/env bash
# Creates the virtualenv the comparison scripts run in: target/compare-venv, with the
# pinned peers of requirements.txt (PyTorch, sentence-transformers, hnswlib). Idempotent.
# The default PyPI torch wheel is a CUDA build (large download); it runs on the CPU here.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/compare-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r benches/compare/requirements.txt
echo "$VENV ready: $("$VENV/bin/python" -c 'import torch, sentence_transformers, hnswlib; print("torch", torch.__version__, "sentence-transformers", sentence_transformers.__version__, "hnswlib", __import__("importlib.metadata").metadata.version("hnswlib"))')"
