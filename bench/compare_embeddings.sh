#!/usr/bin/env bash
# MiniLM against TF-IDF in the `test` model on the prose-text world (bench/RESULTS.md): for each seed, seed the
# small `text` world and run `postrec evaluate` once per embedding method. Uses the POSTREC_* variables of the shell;
# it replaces the database's world. Reports go to reports/embeddings-<seed>-<method>/.
#
#     bench/compare_embeddings.sh            # seeds 42 and 7
#     bench/compare_embeddings.sh 42 7 11
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("${@:-42 7}")
for seed in ${seeds[@]}; do
  .venv/bin/postrec seed --scale small --world text --seed "$seed" 2>&1 | grep seeded
  for method in minilm tfidf-svd; do
    echo "== seed=$seed embedding=$method"
    .venv/bin/postrec evaluate --embedding "$method" --out "reports/embeddings-$seed-$method" 2>&1 \
      | grep -E "embedded posts|hitrate@5=|test_hitrate" | sed 's/^.*INFO //'
  done
done
