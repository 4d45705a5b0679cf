#!/usr/bin/env bash
# Distributed volume segmentation on Slurm (one task per GPU; OUT on a shared filesystem).
# Usage: GPUS=16 bash tools/slurm_segment.sh PARTITION JOB_NAME INPUT [segment.py args: --config --checkpoint --out ...]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: GPUS=16 bash tools/slurm_segment.sh PARTITION JOB_NAME INPUT [segment.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" segment.py "$1" "$2" "$3" "${@:4}"
