#!/usr/bin/env bash
# `postrec evaluate` of the test model with and without the neural sequence feature on the world family (issue 15).
# Usage: bench/nn_worlds.sh OUT_DIR SEED WORLD...   (one database per world and seed, small scale)
# Each world: seed it, evaluate with the nn feature (rows: control, test, nn, the baselines, the oracle), then
# with --no-nn-feature (the test row without it). Reports land in OUT_DIR/<world>-<seed>-{nn,no-nn}/.
set -euo pipefail
out=$1 seed=$2
shift 2
base=${POSTREC_DATABASE_URL%/*}
for world in "$@"; do
  export POSTREC_DATABASE_URL="$base/postrec_nn_${world}_${seed}"
  postrec seed --scale small --world "$world" --seed "$seed" 2>&1 | tail -1
  for variant in nn no-nn; do
    flag=$([ "$variant" = no-nn ] && echo --no-nn-feature || true)
    # shellcheck disable=SC2086
    postrec evaluate $flag --out "$out/$world-$seed-$variant" 2>&1 | grep -E "hitrate@5|step (nn feature|train)" || true
  done
done
