#!/usr/bin/env bash
# How much of the gradient communication the backward pass hides, for dp 2 and dp 4 under
# mpirun on this machine's CPU: `spectra bench --data-parallel` runs the same steps with every
# collective blocking, then overlapped, in one process per rank, and prints both side by side.
#   bench/data_parallel.sh [RECIPE] [extra bench options...]
# Default: the 99M TriLM, micro-batch 1 x 128 tokens, ZeRO 0, 2 and 3 ($ZEROS). On a machine with
# fewer cores than ranks the ranks share cores (oversubscribed), which also slows the reduces.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipe=${1:-$root/recipes/trilm/99m.yaml}
shift || true
spectra=${SPECTRA_BIN:-$root/build/spectra}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
echo "# $(date -u +%Y-%m-%d) $(nproc) CPU cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for ranks in 2 4; do
  for zero in ${ZEROS:-0 2 3}; do
    mpirun -np $ranks --bind-to none "$spectra" bench "$recipe" --data-parallel --steps ${STEPS:-4} \
      --warmup 1 --micro-batch 1 --seq-len 128 --set train.device=cpu --set train.precision=f32 \
      --set parallel.zero=$zero "$@"
    echo
  done
done
