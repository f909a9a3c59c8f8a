"""Which mix of negatives ranks best: train with several ``unseen_per_positive`` values, print validation metrics.

    POSTREC_DATABASE_URL=... .venv/bin/python bench/train_mix.py --mixes 0 1 2 4 8

Runs the build's steps up to evaluation (nothing is published or saved) on the database's current world.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from batch.pipeline.build import (
    BuildOptions,
    BuildState,
    run_steps,
    step_evaluate,
    step_extract,
    step_samples,
    step_train,
    step_train_features,
    step_validate,
)
from batch.pipeline.train import TrainParams
from common.db import make_engine
from common.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixes", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--iterations", type=int, default=TrainParams().iterations)
    parser.add_argument("--depth", type=int, default=TrainParams().depth)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    engine = make_engine(settings.database_url)
    state = BuildState(settings, engine, BuildOptions(publish=False))
    run_steps(state, [("validate", step_validate), ("extract", step_extract), ("features", step_train_features)])
    print(f"{'unseen/positive':>16} {'auc':>7} {'logloss':>8} {'hitrate@5':>10} {'popular@5':>10} {'train rows':>11}")
    for mix in args.mixes:
        params = TrainParams(unseen_per_positive=mix, iterations=args.iterations, depth=args.depth, seed=settings.seed)
        trial = replace(state, options=BuildOptions(params=params, publish=False))
        run_steps(trial, [("samples", step_samples), ("train", step_train), ("evaluate", step_evaluate)])
        m = trial.metrics
        rows = trial.train_set.samples.height if trial.train_set is not None else 0
        print(
            f"{mix:>16.1f} {m['auc']:>7.4f} {m['logloss']:>8.4f} {m['hitrate_at_5']:>10.4f} "
            f"{m['popular_hitrate_at_5']:>10.4f} {rows:>11}"
        )


if __name__ == "__main__":
    main()
