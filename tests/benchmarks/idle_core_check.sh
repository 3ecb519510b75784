#!/usr/bin/env bash
# Idle-core figures of issue 20 in one command (< 4 min on 2 idle cores):
#   1. bench_phases.py: parallel efficiency of the phase-diagram ensemble on 2 worker
#      processes (4 x 4 grid of 256-atom LJ NPT points, 800 + 800 MD steps each: ~3 s of CPU
#      a point; each worker process imports numpy, xarray, torch and atomtwin once, ~2 s of
#      CPU; the points are dispatched one at a time: dask's default batches of 6 ran 16 points
#      as 10 + 6 on the two workers, which capped the wall efficiency near 0.8);
#   2. bench_environments.py: pipeline / descriptor time ratio and cores used (CPU s / wall s)
#      at the heavy settings (SOAP n_max 8, l_max 6, r_cut 5 A + HDBSCAN) and the light ones
#      (n_max 4, l_max 4 + Gaussian mixture), 499,200 environments, 2 worker processes.
# Run it when nothing else runs; it prints /proc/loadavg before and after each part, and the
# figures are idle-core figures only if the load stays near 0 (the benchmarks use 2 cores).
#
#   bash tests/benchmarks/idle_core_check.sh            # from the repository root
#   PY=/path/to/python bash tests/benchmarks/idle_core_check.sh
#   SMOKE=1 bash tests/benchmarks/idle_core_check.sh    # tiny sizes: checks the script only
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
echo "== idle-core check: $(date -u +%FT%TZ), $cpus usable CPUs, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "loadavg before: $(cat /proc/loadavg)"
if [ "${SMOKE:-0}" = 1 ]; then
    phases=(--grid 2 --steps 50); envs=(--frames 4 --reps 1)
else
    phases=(--grid 4 --steps 800); envs=(--frames 200 --reps 2)
fi
start=$SECONDS
echo
echo "== 1. phase-diagram ensemble: serial vs 2 worker processes"
timeout 170 "$PY" tests/benchmarks/bench_phases.py "${phases[@]}" --workers 2
echo "loadavg: $(cat /proc/loadavg)"
echo
echo "== 2. environment pipeline vs descriptors alone (2 worker processes)"
timeout 170 "$PY" tests/benchmarks/bench_environments.py "${envs[@]}" \
    --settings heavy light --no-peer 2>&1 | grep -E -v -i "warning|slowdown|dask directly|futures or delayed|best-practices"
echo "loadavg after: $(cat /proc/loadavg)"
echo "== done in $((SECONDS - start)) s"
