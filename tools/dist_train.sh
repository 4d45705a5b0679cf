#!/usr/bin/env bash
# Distributed training with torchrun (MMDetection's convention).
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node (run on each node): NNODES=2 NODE_RANK=0|1 MASTER_ADDR=node0 PORT=29500 bash tools/dist_train.sh CONFIG 8
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
