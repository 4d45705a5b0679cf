#!/usr/bin/env bash
# Run one of our tools under torchrun; used by dist_train.sh, dist_test.sh (and the Slurm variants).
# Usage: bash tools/dist_run.sh TOOL.py GPUS_PER_NODE [tool args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node (same PORT/MASTER_ADDR everywhere).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/dist_run.sh TOOL.py GPUS_PER_NODE [tool args...]" >&2
    exit 2
fi
TOOL=$1
GPUS=$2
if ! [[ $GPUS =~ ^[1-9][0-9]*$ ]]; then
    echo "$TOOL: error: GPUS (the number of processes) must be an integer >= 1, got '$GPUS'" >&2
    exit 2
fi
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}

PYTHONPATH="$DIR/..:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$GPUS" \
    "$DIR/$TOOL" \
    "${@:3}" \
    --launcher pytorch
