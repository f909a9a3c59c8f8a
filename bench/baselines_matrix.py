"""Every recommender x world x protocol: hitrate@5 with 95% intervals, as ``postrec evaluate`` measures it.

For each seed and world, the database of POSTREC_DATABASE_URL is reseeded (`postrec seed --world W`, replacing its
data) and evaluated under both protocols: ``time`` (likes of the last 7 days held out) and ``per-user`` (each
user's last 20% of views held out). Each finished evaluation is appended to a JSON lines file, so an interrupted
run resumes where it stopped; the markdown tables are printed from that file at the end (``--table-only`` prints
them without running anything).

    nice -n 10 .venv/bin/python bench/baselines_matrix.py --seeds 42 7
    .venv/bin/python bench/baselines_matrix.py --table-only
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from batch.evaluation.evaluate import PROTOCOLS, EvaluateOptions, run_evaluation
from batch.world.seed import seed_database
from common.db import make_engine
from common.settings import load_settings

WORLDS = ("text", "collab", "popular", "bursty")
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
    "test",
    "oracle_topic_level",
    "oracle",
)
log = logging.getLogger("baselines_matrix")


def run_one(scale: str, seed: int, world: str, protocol: str, oracle: bool = True) -> dict[str, object]:
    """One evaluation of the current database; the world must already be seeded."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as out:
            options = EvaluateOptions(out_dir=Path(out), protocol=protocol, oracle=oracle)
            report = run_evaluation(settings, engine, options)
    finally:
        engine.dispose()
    scores = {s.name: [s.hitrate, s.hitrate_low, s.hitrate_high] for s in report.scores}
    return {
        "scale": scale,
        "seed": seed,
        "world": world,
        "protocol": protocol,
        "users": report.users,
        "seconds": round(time.perf_counter() - started, 1),
        "scores": scores,
    }


def done_runs(path: Path) -> list[dict[str, object]]:
    """The runs already in the results file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_matrix(args: argparse.Namespace) -> None:
    """Seed each world once per seed, then evaluate it under each protocol, skipping runs already recorded."""
    done = {(r["scale"], r["seed"], r["world"], r["protocol"]) for r in done_runs(args.results)}
    for seed in args.seeds:
        for world in args.worlds:
            wanted = [p for p in args.protocols if (args.scale, seed, world, p) not in done]
            if not wanted:
                continue
            settings = load_settings()
            engine = make_engine(settings.database_url)
            try:
                seed_database(engine, args.scale, seed, world)
            finally:
                engine.dispose()
            for protocol in wanted:
                record = run_one(args.scale, seed, world, protocol, oracle=not args.no_oracle)
                with args.results.open("a") as results:
                    results.write(json.dumps(record) + "\n")
                log.info("done: seed=%d world=%s protocol=%s seconds=%s", seed, world, protocol, record["seconds"])


def cell(score: list[float] | None) -> str:
    """``0.312 (0.253-0.368)`` or a dash."""
    return "-" if score is None else f"{score[0]:.3f} ({score[1]:.3f}-{score[2]:.3f})"


def tables(runs: list[dict[str, object]]) -> str:
    """One markdown table per scale and seed: recommenders down, world x protocol across."""
    out = []
    for scale, seed in sorted({(str(r["scale"]), int(r["seed"])) for r in runs}):  # type: ignore[call-overload]
        mine = {(r["world"], r["protocol"]): r for r in runs if r["scale"] == scale and r["seed"] == seed}
        columns = [(w, p) for w in WORLDS for p in PROTOCOLS if (w, p) in mine]
        out += [f"Scale {scale}, seed {seed}: hitrate@5 (95% interval); users evaluated in the last row.", ""]
        out.append("| recommender | " + " | ".join(f"{w} {p}" for w, p in columns) + " |")
        out.append("|---|" + "---|" * len(columns))
        for name in ORDER:
            row = [cell(mine[c]["scores"].get(name)) for c in columns]  # type: ignore[attr-defined]
            out.append(f"| {name} | " + " | ".join(row) + " |")
        out.append("| users | " + " | ".join(str(mine[c]["users"]) for c in columns) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    """Run what is missing, then print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=WORLDS)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--results", type=Path, default=Path(".data/baselines_matrix.jsonl"))
    parser.add_argument("--table-only", action="store_true")
    # The per-user oracle scores users one distinct window start at a time: on bursty (a 15-month span) that is slow.
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle rows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.table_only:
        run_matrix(args)
    print(tables(done_runs(args.results)))


if __name__ == "__main__":
    main()
