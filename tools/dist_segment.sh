#!/usr/bin/env bash
# Distributed volume segmentation with torchrun: every rank segments a share of the slabs, then links/fuses and
# writes its own block of slices.
# Usage: bash tools/dist_segment.sh INPUT GPUS [segment.py args: --config --checkpoint --out ...]
# Multi-node (run on each node, OUT on a shared filesystem):
#   NNODES=4 NODE_RANK=0..3 MASTER_ADDR=node0 PORT=29500 bash tools/dist_segment.sh stack.tif 8 --config ... --out ...
# On CPUs (gloo) GPUS is the number of processes; pass --device cpu.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/dist_segment.sh INPUT GPUS [segment.py args: --config --checkpoint --out ...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" segment.py "$2" "$1" "${@:3}"
