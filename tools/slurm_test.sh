#!/usr/bin/env bash
# Distributed evaluation on Slurm. Usage: GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [args...]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" test.py "$1" "$2" "$3" "$4" "${@:5}"
