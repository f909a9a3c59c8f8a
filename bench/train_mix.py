"""Which mix of negatives ranks best: train with several ``unseen_per_positive`` values, print validation metrics.

    POSTREC_DATABASE_URL=... .venv/bin/python bench/train_mix.py --mixes 0 1 2 4 8

Runs the build's steps up to evaluation (nothing is published or saved) on the database's current world.
"""

from __future__ import annotations

import argparse
import logging

import polars as pl

from batch.pipeline.cutoffs import Cutoff, choose_windows
from batch.pipeline.embed_features import EmbedParams
from batch.pipeline.feature_sets import feature_sets
from batch.pipeline.features import fit_encoders
from batch.pipeline.options import BuildOptions, TrainParams
from batch.pipeline.samples import labelled_rows
from batch.pipeline.source import read_source
from batch.pipeline.train import train_models, validate_models
from common.ab import CONTROL
from common.columns import Col
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
    options = BuildOptions.from_settings(settings, publish=False)
    source = read_source(engine, options)
    windows = choose_windows(source.likes, source.as_of, options.params.windows).windows
    encoders = fit_encoders(source.users, source.posts)
    cutoffs = {cutoff: windows.cutoff(cutoff) for cutoff in Cutoff}
    sets = feature_sets(settings, engine, source, encoders, cutoffs, False, EmbedParams())
    window_likes = source.likes.filter(pl.col(Col.TIMESTAMP) >= windows.valid_start)
    print(f"{'unseen/positive':>16} {'auc':>7} {'logloss':>8} {'hitrate@5':>10} {'popular@5':>10} {'train rows':>11}")
    for mix in args.mixes:
        params = TrainParams(unseen_per_positive=mix, iterations=args.iterations, depth=args.depth, seed=settings.seed)
        samples = labelled_rows(engine, sets.base, windows, params, source.likes)
        models = train_models(sets, samples, params, (CONTROL,)).models()
        m = validate_models(models, sets, samples, window_likes, params).metrics
        rows = samples.train.height
        print(
            f"{mix:>16.1f} {m['auc']:>7.4f} {m.get('logloss', float('nan')):>8.4f} {m['hitrate_at_5']:>10.4f} "
            f"{m['popular_hitrate_at_5']:>10.4f} {rows:>11}"
        )


if __name__ == "__main__":
    main()
