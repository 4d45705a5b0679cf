#!/usr/bin/env bash
# Distributed evaluation with torchrun (MMDetection's convention).
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node (run on each node): NNODES=2 NODE_RANK=0|1 MASTER_ADDR=node0 PORT=29500 bash tools/dist_test.sh CONFIG CKPT 8
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
