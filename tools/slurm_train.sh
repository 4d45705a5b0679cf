#!/usr/bin/env bash
# Distributed training on Slurm. Usage: GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [args...]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" train.py "$1" "$2" "$3" --work-dir "$4" "${@:5}"
