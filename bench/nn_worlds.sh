#!/usr/bin/env bash
# `postrec evaluate --nn-ablation` on the world family (issue 15): the test model with and without the neural
# sequence feature, trained on the same rows in one run, beside control, nn, the baselines and the oracle.
# Usage: bench/nn_worlds.sh OUT_DIR SEED WORLD...   (one database per world and seed, small scale)
# Extra evaluate flags go in EVALUATE_FLAGS (e.g. "--protocol per-user --embedding tfidf-svd").
# Reports land in OUT_DIR/<world>-<seed>/; bench/baselines_matrix.py runs the whole matrix resumably.
set -euo pipefail
out=$1 seed=$2
shift 2
base=${POSTREC_DATABASE_URL%/*}
for world in "$@"; do
  export POSTREC_DATABASE_URL="$base/postrec_nn_${world}_${seed}"
  postrec seed --scale small --world "$world" --seed "$seed" 2>&1 | tail -1
  # shellcheck disable=SC2086
  postrec evaluate --nn-ablation ${EVALUATE_FLAGS:-} --out "$out/$world-$seed" 2>&1 |
    grep -E "hitrate@5|step (nn feature|train)" || true
  grep -A3 "Paired differences" "$out/$world-$seed/evaluation.md" || true
done
