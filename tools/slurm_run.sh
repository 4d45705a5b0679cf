#!/usr/bin/env bash
# Run one of our tools on a Slurm cluster with srun (MMDetection's convention); used by slurm_train.sh etc.
# Usage: bash tools/slurm_run.sh TOOL.py PARTITION JOB_NAME [tool args...]
# Environment: GPUS (total, default 8), GPUS_PER_NODE (default GPUS up to 8), CPUS_PER_TASK (default 5), SRUN_ARGS.
# srun replaces this shell (exec): a kill reaches it.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/slurm_run.sh TOOL.py PARTITION JOB_NAME [tool args...]" >&2
    exit 2
fi
TOOL=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}  # GPUS=1 reserves one GPU, not a node of 8
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}

export PYTHONPATH="$DIR/..:${PYTHONPATH:-}"
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "$PYTHON" -u "$DIR/$TOOL" "${@:4}" --launcher slurm
