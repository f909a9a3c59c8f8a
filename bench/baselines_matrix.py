"""Every recommender x world x protocol: hitrate@5 with 95% intervals, as ``postrec evaluate`` measures it.

Each world and seed gets a database of its own, next to the one of POSTREC_DATABASE_URL (``<name>_<world>_<seed>``),
seeded once (`postrec seed --world W`; kept when it already holds that world, scale and seed) and evaluated under
the protocols: ``time`` (the likes after one cutoff held out, the window grown from 7 days until it holds enough
users, as ``postrec evaluate`` sizes it) and ``per-user`` (each user's last 20% of views held out). Every evaluation
trains ``test`` twice, with and without the sequence score (``--nn-ablation``; ``--no-nn-ablation`` turns it off),
so one run gives both rows and their paired difference. Runs go in the order of
``--cells`` (protocol:seed pairs, each over every world), so the most wanted cells come first when time runs out.

Each finished evaluation is appended to a JSON lines file with its commit and seconds, so an interrupted run resumes
where it stopped; the markdown tables are printed from that file at the end (``--table-only`` prints them without
running anything).

    nice -n 10 .venv/bin/python bench/baselines_matrix.py --seeds 42 7 --embedding tfidf-svd
    nice -n 10 .venv/bin/python bench/baselines_matrix.py --cells per-user:42 time:7 per-user:7 time:42
    .venv/bin/python bench/baselines_matrix.py --table-only
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from batch.evaluation.evaluate import PROTOCOLS, EvaluateOptions, run_evaluation
from batch.evaluation.paired import BEST_BASELINE, best_of
from batch.pipeline.embed import AUTO, EMBEDDING_METHODS
from batch.ranking.recommenders.registry import RECOMMENDERS
from batch.world.designs import WORLDS as DESIGNS
from batch.world.seed import seed_database
from batch.world.store import PARAMS_TABLE
from common.ab import CONTROL, TEST
from common.db import ensure_database, make_engine, sqlalchemy_url
from common.settings import Settings, load_settings

WORLDS = tuple(DESIGNS)
DIFFERENCE = "test - test_without_nn"
AB_DIFFERENCE = f"{TEST} - {CONTROL}"
BEST_DIFFERENCES = (f"{CONTROL} - {BEST_BASELINE}", f"{TEST} - {BEST_BASELINE}")
ORDER = (
    "random",
    "popular",
    "popularity",
    "recent_popularity",
    "item_knn",
    "als",
    "ease",
    "nn",
    "control",
    "test_without_nn",
    "test",
    DIFFERENCE,
    AB_DIFFERENCE,
    *BEST_DIFFERENCES,
    "oracle_topic_level",
    "oracle",
)
log = logging.getLogger("baselines_matrix")

Record = dict[str, Any]


def world_settings(settings: Settings, world: str, seed: int) -> Settings:
    """The deployment's settings on the database of one world and seed."""
    url = sqlalchemy_url(settings.database_url)
    name = f"{url.database}_{world}_{seed}"
    return replace(settings, database_url=url.set(database=name).render_as_string(hide_password=False))


def seeded_world(engine: sa.Engine) -> tuple[str, str, int] | None:
    """(world, scale, seed) of the world the database holds, or None."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(PARAMS_TABLE):
            return None
        row = conn.execute(sa.text(f"SELECT params::text FROM {PARAMS_TABLE}")).first()
    params = json.loads(row[0]) if row else {}
    return (params["world"], params["scale"], int(params["seed"])) if row else None


def ensure_world(settings: Settings, scale: str, seed: int, world: str) -> None:
    """Seed the world's database unless it already holds that world, scale and seed."""
    ensure_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        if seeded_world(engine) == (world, scale, seed):
            return
        started = time.perf_counter()
        seed_database(engine, scale, seed, world)
        log.info("seeded: world=%s seed=%d seconds=%.0f", world, seed, time.perf_counter() - started)
    finally:
        engine.dispose()


def current_commit() -> str:
    """The commit the code runs at (``+dirty`` with uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], capture_output=True, text=True, check=False)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run_one(settings: Settings, cell: Record, options: EvaluateOptions) -> Record:
    """One evaluation of the cell's database; the world must already be seeded."""
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as out:
            report = run_evaluation(settings, engine, replace(options, out_dir=Path(out)))
    finally:
        engine.dispose()
    scores = {s.name: [s.hitrate, s.hitrate_low, s.hitrate_high] for s in report.scores}
    scores |= {name: list(values) for name, values in report.differences.items()}
    return cell | {
        "users": report.users,
        "seconds": round(time.perf_counter() - started, 1),
        "commit": current_commit(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "scores": scores,
    }


def cell_key(record: Record) -> tuple[Any, ...]:
    """What identifies a run (records written before the embedding was recorded count as ``auto``)."""
    fields = (record["scale"], record["seed"], record["world"], record["protocol"])
    return (*fields, record.get("embedding", AUTO), record.get("nn_ablation", False))


def done_runs(path: Path) -> list[Record]:
    """The runs already in the results file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def planned_cells(args: argparse.Namespace) -> list[Record]:
    """Every run wanted, most wanted first: the ``--cells`` order, each over the worlds."""
    pairs = args.cells or [f"{protocol}:{seed}" for seed in args.seeds for protocol in args.protocols]
    cells = []
    for pair in pairs:
        protocol, seed = parse_cell(pair)
        cells += [
            {"scale": args.scale, "seed": seed, "world": world, "protocol": protocol, "embedding": args.embedding}
            | {"nn_ablation": not args.no_nn_ablation}
            for world in args.worlds
        ]
    return cells


def parse_cell(text: str) -> tuple[str, int]:
    """``per-user:42`` -> (``per-user``, 42)."""
    protocol, _, seed = text.rpartition(":")
    if protocol not in PROTOCOLS or not seed.isdigit():
        raise argparse.ArgumentTypeError(f"cell {text!r} is not PROTOCOL:SEED with a protocol of {PROTOCOLS}")
    return protocol, int(seed)


def run_matrix(args: argparse.Namespace) -> None:
    """Run each planned cell not yet in the results file, in order, appending each as it finishes."""
    done = {cell_key(record) for record in done_runs(args.results)}
    todo = [cell for cell in planned_cells(args) if cell_key(cell) not in done]
    log.info("cells: %d planned, %d to run", len(planned_cells(args)), len(todo))
    for cell in todo:
        settings = world_settings(load_settings(), cell["world"], cell["seed"])
        ensure_world(settings, cell["scale"], cell["seed"], cell["world"])
        options = EvaluateOptions(
            protocol=cell["protocol"],
            oracle=not args.no_oracle,
            embedding=cell["embedding"],
            nn_ablation=cell["nn_ablation"],
        )
        log.info("start: %s", " ".join(f"{key}={value}" for key, value in cell.items()))
        record = run_one(settings, cell, options)
        with args.results.open("a") as results:
            results.write(json.dumps(record) + "\n")
        log.info(
            "done: seed=%d world=%s protocol=%s seconds=%s",
            cell["seed"],
            cell["world"],
            cell["protocol"],
            record["seconds"],
        )


def cell_text(score: list[float] | None, signed: bool = False) -> str:
    """``0.312 (0.253-0.368)``, signed for a difference, or a dash."""
    if score is None:
        return "-"
    sign = "+" if signed else ""
    return f"{score[0]:{sign}.3f} ({score[1]:{sign}.3f}..{score[2]:{sign}.3f})"


def tables(runs: list[Record]) -> str:
    """One markdown table per scale, seed and embedding: recommenders down, world x protocol across."""
    out = []
    groups = sorted({(str(r["scale"]), int(r["seed"]), str(r.get("embedding", AUTO))) for r in runs})
    for scale, seed, embedding in groups:
        mine = {
            (r["world"], r["protocol"]): r
            for r in runs
            if (r["scale"], r["seed"], r.get("embedding", AUTO)) == (scale, seed, embedding)
        }
        columns = [(w, p) for w in WORLDS for p in PROTOCOLS if (w, p) in mine]
        commits = ", ".join(sorted({str(mine[c].get("commit", "?")) for c in columns}))
        out += [
            f"Scale {scale}, seed {seed}, embedding {embedding} (commit {commits}): hitrate@5 (95% interval); the"
            " paired differences (95% interval), each user's hit in the first minus theirs in the second; users"
            " evaluated and minutes per run in the last rows.",
            "",
        ]
        out.append("| recommender | " + " | ".join(f"{w} {p}" for w, p in columns) + " |")
        out.append("|---|" + "---|" * len(columns))
        for name in ORDER:
            row = [cell_text(mine[c]["scores"].get(name), signed=" - " in name) for c in columns]
            out.append(f"| {name} | " + " | ".join(row) + " |")
        out.append("| users | " + " | ".join(str(mine[c]["users"]) for c in columns) + " |")
        out.append("| minutes | " + " | ".join(f"{mine[c]['seconds'] / 60:.0f}" for c in columns) + " |")
        out.append("")
    return "\n".join(out)


def verdict_table(runs: list[Record]) -> str:
    """Issue 12's reading, one row per cell: the best seen-aware baseline and its interval, both models, whether
    both lie above that interval, and the paired differences (runs older than them show a dash)."""
    out = [
        "| world | protocol | seed | best baseline [95% interval] | control | test | both above | test - control |"
        " control - best | test - best |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: (r["scale"], r["world"], r["protocol"], r["seed"])):
        scores = run["scores"]
        best = best_of({name: values[0] for name, values in scores.items()}, RECOMMENDERS)
        if best is None:
            continue
        point, low, high = scores[best]
        control, test = scores["control"][0], scores["test"][0]
        differences = [cell_text(scores.get(name), signed=True) for name in (AB_DIFFERENCE, *BEST_DIFFERENCES)]
        out.append(
            f"| {run['world']} | {run['protocol']} | {run['seed']} | {best} {point:.4f} [{low:.4f}, {high:.4f}] |"
            f" {control:.4f} | {test:.4f} | {'yes' if min(control, test) > high else 'no'} | "
            + " | ".join(differences)
            + " |"
        )
    return "\n".join(out)


def main() -> None:
    """Run what is missing, then print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=WORLDS)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument(
        "--cells", nargs="+", default=None, help="PROTOCOL:SEED pairs in the order to run (default: seeds x protocols)"
    )
    parser.add_argument("--embedding", default=AUTO, choices=EMBEDDING_METHODS, help="the test model's embeddings")
    parser.add_argument("--no-nn-ablation", action="store_true", help="do not train test without the nn score")
    parser.add_argument("--results", type=Path, default=Path(".data/baselines_matrix.jsonl"))
    parser.add_argument("--table-only", action="store_true")
    # The per-user oracle scores users one distinct window start at a time: on bursty (a 15-month span) that is slow.
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle rows")
    args = parser.parse_args()
    for pair in args.cells or []:
        parse_cell(pair)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.table_only:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        run_matrix(args)
    runs = done_runs(args.results)
    print(tables(runs))
    print(verdict_table(runs))


if __name__ == "__main__":
    main()
