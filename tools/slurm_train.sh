#!/usr/bin/env bash
# Distributed training on Slurm. Usage: GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [args...]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" train.py "$1" "$2" "$3" --work-dir "$4" "${@:5}"
