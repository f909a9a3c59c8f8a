"""Build options come from the settings in one place, for the CLI, the refresh and the evaluation alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from batch.evaluation.evaluate import EvaluateOptions, evaluation_build_options
from batch.pipeline.options import MAX_HISTORY_LAG, BuildOptions, served_groups
from common.ab import CONTROL, TEST
from common.settings import load_settings

SETTINGS = load_settings({"POSTREC_SEED": "7", "POSTREC_K": "120", "POSTREC_CONTROL_PERCENT": "100"})


def test_options_take_the_seed_and_list_length_of_the_settings():
    options = BuildOptions.from_settings(SETTINGS)

    assert options.params.seed == 7 and options.k == 120
    assert options.wanted_models(SETTINGS.control_percent) == served_groups(100) == (CONTROL,)


def test_explicit_choices_win_over_the_settings():
    as_of = datetime(2021, 12, 1)

    options = BuildOptions.from_settings(
        SETTINGS, as_of=as_of, k=30, model_path=Path("m"), publish=False, unseen_per_positive=2.0
    )

    assert (options.as_of, options.k, options.model_path, options.publish) == (as_of, 30, Path("m"), False)
    assert options.params.unseen_per_positive == 2.0 and options.params.seed == 7


def test_evaluation_builds_both_models_with_the_deployment_seed():
    options = evaluation_build_options(SETTINGS, EvaluateOptions(as_of=datetime(2021, 12, 20), k=50))

    assert options.params.seed == 7  # the evaluation's own copy used to drop POSTREC_SEED
    assert options.models == (CONTROL, TEST) and options.k == 50 and options.as_of == datetime(2021, 12, 20)


def test_evaluation_embeds_from_the_deployments_cache_with_the_chosen_method():
    options = evaluation_build_options(SETTINGS, EvaluateOptions(embedding="tfidf-svd"))

    assert options.embedding_cache == SETTINGS.data_dir / "embeddings"  # not the evaluation's own data dir
    assert options.embedding == "tfidf-svd"
    shared = replace(SETTINGS, embedding_cache=Path("/var/cache/vectors"))  # POSTREC_EMBEDDING_CACHE
    assert evaluation_build_options(shared, EvaluateOptions()).embedding_cache == Path("/var/cache/vectors")


def test_training_rows_read_their_history_up_to_the_lists_horizon_before_them():
    assert BuildOptions.from_settings(SETTINGS).params.history_lag == timedelta(0)
    weekly = replace(SETTINGS, horizon_hours=36)  # POSTREC_HORIZON_HOURS
    assert BuildOptions.from_settings(weekly).params.history_lag == timedelta(hours=36)
    assert BuildOptions.from_settings(weekly, horizon=timedelta(days=90)).params.history_lag == MAX_HISTORY_LAG


def test_the_time_cut_trains_for_its_window_and_the_per_user_hold_out_for_the_next_views():
    time_cut = EvaluateOptions(as_of=datetime(2021, 12, 20), window=timedelta(days=3))
    assert evaluation_build_options(SETTINGS, time_cut).params.history_lag == timedelta(days=3)
    long_cut = replace(time_cut, window=timedelta(days=90))
    assert evaluation_build_options(SETTINGS, long_cut).params.history_lag == MAX_HISTORY_LAG
    per_user = EvaluateOptions(protocol="per-user", window=timedelta(days=3))
    assert evaluation_build_options(replace(SETTINGS, horizon_hours=48), per_user).params.history_lag == timedelta(0)
