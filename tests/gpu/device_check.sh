#!/usr/bin/env bash
# GPU check of issue 15, for a fresh machine with an NVIDIA GPU and a CUDA build of torch.
#
#   tests/gpu/device_check.sh [--dry-run] [OUT_DIR]      (run from anywhere; default OUT_DIR
#                                                        $OUT or ./device_check_out)
#
# 1. installs what else it needs from the wheels carried beside the repository, in .whl/
#    (pip --no-index: it reaches no registry; torch and e3nn are expected on the machine);
#    then atomtwin itself, editable, without dependencies;
# 2. runs tests/gpu (kernel vs reference on CUDA: values, first and second derivatives,
#    float32/float64, random shapes; MD restarts) -> OUT_DIR/pytest_gpu.txt;
# 3. times eager / torch.compile / AOTI / AOTI + kernel of both architectures at 1k, 10k,
#    100k atoms against nequip-allegro's AOTI and AOTI + Triton path, same inputs, peak GPU
#    memory -> OUT_DIR/device_bench.json and device_bench.txt.
# Make .whl/ on a machine with network (the atomtwin[engines,peers] dependencies that the GPU
# machine lacks, for Python 3.12, e.g.):
#   pip download -d .whl --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 nequip==0.19.1 nequip-allegro==0.8.3 ase vesin \
#       pydantic xarray h5netcdf zarr pyyaml      (then delete any torch/nvidia/triton wheel)
# Time limits: pytest 120 s, bench 300 s (builds included; a hard stop at 340 s): < 8 min.
#
# --dry-run: on CPU, no install (prints the pip commands), tests/gpu collected only (they
# skip without CUDA), the bench at 32/64 atoms without the CUDA-only paths.  Tests the
# script itself; its numbers mean nothing.
set -euo pipefail
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUTDIR="${1:-${OUT:-$PWD/device_check_out}}"
PY="${PYTHON:-python3}"
WHEELS="${WHEELS:-$ROOT/.whl}"
mkdir -p "$OUTDIR"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$OUTDIR/inductor_cache}"
START=$(date +%s)
log() { echo "[device_check $(( $(date +%s) - START ))s] $*" | tee -a "$OUTDIR/device_check.log"; }

log "python: $($PY -c 'import sys; print(sys.version.split()[0])'); root $ROOT; out $OUTDIR"
PIP=("$PY" -m pip install --no-index --find-links "$WHEELS" --no-build-isolation)
if [[ $DRY == 1 ]]; then
  log "dry run: would run: ${PIP[*]} $WHEELS/*.whl ; ${PIP[*]} --no-deps -e $ROOT"
else
  if compgen -G "$WHEELS/*.whl" > /dev/null; then
    # never replace the machine's CUDA torch by a wheel from the folder
    "${PIP[@]}" $(ls "$WHEELS"/*.whl | grep -v -E '/(torch|nvidia_|triton)-') 2>&1 | tail -3 | tee -a "$OUTDIR/device_check.log"
  else
    log "no wheels in $WHEELS: using what is installed"
  fi
  "${PIP[@]}" --no-deps -e "$ROOT" 2>&1 | tail -1 | tee -a "$OUTDIR/device_check.log"
fi
(set +o pipefail; $PY - <<'PY' 2>&1 | tee -a "$OUTDIR/device_check.log"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
for mod in ("triton", "e3nn", "nequip", "allegro", "atomtwin"):
    try:
        m = __import__(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(mod, "MISSING:", e)
PY
) || log "WARNING: the environment report failed (is \$PYTHON a Python with torch?)"

log "tests/gpu"
PT=(timeout 120 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/gpu -rs)
if [[ $DRY == 1 ]]; then PT+=(--collect-only); fi
set +e
"${PT[@]}" > "$OUTDIR/pytest_gpu.txt" 2>&1
RC_TEST=$?
set -e
tail -5 "$OUTDIR/pytest_gpu.txt" | tee -a "$OUTDIR/device_check.log"

log "timing"
BENCH=(timeout 340 "$PY" tests/gpu/device_bench.py --out "$OUTDIR" --budget-s 300)
if [[ $DRY == 1 ]]; then BENCH+=(--dry-run --modes eager compile --budget-s 120); fi
set +e
"${BENCH[@]}" > "$OUTDIR/device_bench.log" 2>&1
RC_BENCH=$?
set -e
tail -25 "$OUTDIR/device_bench.log" | tee -a "$OUTDIR/device_check.log"
log "done: pytest rc=$RC_TEST, bench rc=$RC_BENCH; results in $OUTDIR"
exit $(( RC_TEST != 0 || RC_BENCH != 0 ))
