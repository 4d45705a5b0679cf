#!/usr/bin/env bash
# Run one of our tools under torchrun; used by dist_train.sh, dist_test.sh (and the Slurm variants).
# Usage: bash tools/dist_run.sh TOOL.py GPUS_PER_NODE [tool args...]
# One node: a free port (torchrun --standalone) unless PORT is set. Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and
# PORT on every node (same PORT/MASTER_ADDR everywhere). torchrun replaces this shell (exec): a kill reaches it.
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
NNODES=${NNODES:-1}
if [ "$NNODES" != 1 ] && { [ -z "${MASTER_ADDR:-}" ] || [ -z "${NODE_RANK:-}" ]; }; then
    echo "$TOOL: error: NNODES=$NNODES: set MASTER_ADDR (the host of node 0) and NODE_RANK on every node" >&2
    exit 2
fi
if [ "$NNODES" = 1 ] && [ -z "${PORT:-}" ]; then
    RENDEZVOUS=(--standalone)  # a free port: a second job on this machine does not collide with the first
else
    RENDEZVOUS=(--nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
                --master_port="${PORT:-29500}")
fi
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}

export PYTHONPATH="$DIR/..:${PYTHONPATH:-}"
exec "$PYTHON" -m torch.distributed.run \
    "${RENDEZVOUS[@]}" \
    --nproc_per_node="$GPUS" \
    "$DIR/$TOOL" \
    "${@:3}" \
    --launcher pytorch
