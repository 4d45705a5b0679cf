#!/usr/bin/env bash
# GPU checks behind BENCHMARKS.md "GPU": training speed of the R101 generalist recipe (float32 and --amp), the
# CPU-tiny `make model` (generalist and phase model) on a GPU, and whole-volume segmentation throughput of the
# generalist on a GPU.
#
# Usage (repository root, on the GPU machine):
#   OUT=DIR MODEL_DIR=DIR bash benchmarks/gpu/run_checks.sh
# MODEL_DIR holds the generalist built by `make model` (config.py + model.pth). With INSTALL=1 (default) the wheels in
# .whl/ (mmengine, mmdet, mmcv-lite and their pure or cp312 dependencies) are installed into /tmp/site first and
# mmcv's compiled ops are replaced by benchmarks/gpu/mmcv_ext_torchvision.py (torchvision kernels; see there).
# .whl/ (git-ignored) was made here with `pip download --no-deps --only-binary=:all: --python-version 3.12
# --platform manylinux_2_28_x86_64 ... -d .whl` of requirements/runtime.txt's pins that the machine lacks (mmengine,
# mmdet, tifffile, pycocotools, zarr, fastremap, connected-components-3d and their own needs: addict, yapf,
# platformdirs, termcolor, shapely, terminaltables, numcodecs, donfig, google-crc32c), setuptools 81 (mmengine needs
# pkg_resources) and mmcv 2.1.0 built from its sdist with MMCV_WITH_OPS=0 (`pip wheel --no-build-isolation`).
# Scale knobs (a dry run on the CPU sets them small): DEVICE, TINY_ITERS, R101_ITERS, CORPUS_VOLUMES, VOLUME_SHAPE.
# Every step is timed into $OUT/steps.tsv (step, rc, milliseconds) and logged to $OUT/log.txt; a failing step does not
# stop the others.
set -u
OUT=${OUT:?set OUT to the results folder}
MODEL_DIR=${MODEL_DIR:?set MODEL_DIR to the generalist folder}
DEVICE=${DEVICE:-cuda:0}
TINY_ITERS=${TINY_ITERS:-150}  # the sizes that fitted one 600 s call on an H200 (BENCHMARKS.md "On a GPU")
R101_ITERS=${R101_ITERS:-120}
CORPUS_VOLUMES=${CORPUS_VOLUMES:-4}
VOLUME_SHAPE=${VOLUME_SHAPE:-256 256 256}
WORK=${WORK:-$(mktemp -d /tmp/gpu_checks.XXXXXX)}  # a fresh folder: a warm machine keeps an earlier call's builds
PY=${PY:-python3}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/log.txt"
{ echo "command: $0 $*"; echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "load: $(cat /proc/loadavg)"; } >> "$OUT/run.txt"

step() {  # step NAME TIMEOUT_S COMMAND...: run, log, record rc and wall seconds
    local name=$1 limit=$2 started rc
    shift 2
    echo "=== $name ($(date -u +%H:%M:%S)) $*" >>"$LOG"
    started=$(date +%s%N)
    timeout "$limit" "$@" >>"$LOG" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((($(date +%s%N) - started) / 1000000))" >>"$OUT/steps.tsv"
}

copy_log() {  # copy_log NAME: the training log of $WORK/NAME into $OUT at once (a later step may be cut off)
    local log
    log=$(find "$WORK/$1" -name '*.log' 2>/dev/null | head -1)
    [ -n "$log" ] && cp "$log" "$OUT/$(echo "$1" | tr / _).log"
}

if [ "${INSTALL:-1}" = 1 ]; then
    if ! compgen -G '.whl/*.whl' >/dev/null; then
        echo "run_checks.sh: no wheels in .whl/ (see this script's header for how they are made)" >&2
        exit 2
    fi
    step install 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl
    cp benchmarks/gpu/mmcv_ext_torchvision.py /tmp/site/mmcv/_ext.py
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
step environment 120 "$PY" -c "
import platform, torch, torchvision, mmcv, mmengine, mmdet, mmdet.models, libnet_mmdet
print('python', platform.python_version(), 'torch', torch.__version__, 'torchvision', torchvision.__version__,
      'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmdet', mmdet.__version__)
print('cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0), 'cpus', __import__('os').cpu_count())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$LOG" 2>&1

# 1. `make model` on the GPU: corpus, then TINY_ITERS iterations of the CPU-tiny generalist and of the phase model
# (speed only).
step make_model_tiny 240 "$PY" tools/make_model.py --device "$DEVICE" --volumes "$CORPUS_VOLUMES" \
    --iters "$TINY_ITERS" --out "$WORK/tiny" --corpus "$WORK/corpus"
copy_log tiny/work_dir
# the phase corpus has its own settings (make_model refuses a corpus made with others)
step make_model_phases 180 "$PY" tools/make_model.py --recipe phases --device "$DEVICE" --volumes "$CORPUS_VOLUMES" \
    --iters "$TINY_ITERS" --out "$WORK/phases" --corpus "$WORK/phase_corpus"
copy_log phases/work_dir

# 2. The R101 generalist recipe on the same corpus, float32 and mixed precision. Randomly initialised backbone: the
# machine reaches no weights host (speed does not depend on the weights).
r101() {  # r101 NAME EXTRA_ARGS...
    local name=$1
    shift
    step "$name" 300 "$PY" tools/train.py configs/nmc/mask-rcnn_r101_fpn_generalist.py --work-dir "$WORK/$name" "$@" \
        --cfg-options model.backbone.init_cfg=None "train_dataloader.dataset.data_root=$WORK/corpus/" \
        "train_cfg.max_iters=$R101_ITERS" default_hooks.logger.interval=10 \
        "default_hooks.checkpoint.interval=$((R101_ITERS + 1))" default_hooks.checkpoint.save_last=False
    copy_log "$name"
}
[ "$DEVICE" = cpu ] && export CUDA_VISIBLE_DEVICES=
r101 train_r101_fp32
r101 train_r101_amp --amp
unset CUDA_VISIBLE_DEVICES

# 3. Whole-volume segmentation with the generalist: a held-out `typical` volume (seed 5000), all three views,
# float32 and --amp, each scored against the exact labels.
# shellcheck disable=SC2086
step synth_volume 180 "$PY" tools/make_synthetic.py --out "$WORK/volume" --preset typical --seed 5000 \
    --shape $VOLUME_SHAPE --no-coco --no-via
for precision in fp32 amp; do
    flag=()
    [ "$precision" = amp ] && flag=(--amp)
    step "segment_$precision" 300 "$PY" tools/segment.py "$WORK/volume/image.tif" --out "$WORK/labels_$precision.tif" \
        --config "$MODEL_DIR/config.py" --checkpoint "$MODEL_DIR/model.pth" --device "$DEVICE" --phase-model none \
        "${flag[@]}"
    step "evaluate_$precision" 120 "$PY" tools/evaluate_volume.py "$WORK/volume/labels.tif" \
        "$WORK/labels_$precision.tif" --out "$OUT/evaluate_$precision.json"
done

cat "$OUT/steps.tsv"
