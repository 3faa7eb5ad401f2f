"""Control without perception: DDPG on LaneFollowState-v0 (LaneFollow-v0's car and roads, the privileged lane
state instead of the camera), the paper's settings against the env's preset.

Variants over the LaneFollowState-v0 DDPG preset: paper (Kendall et al.'s settings as in the LaneFollow-v0
preset without the CNN: 250 updates after each episode, discount 0.9, one hidden layer of 8, 1-step returns, no
pre-tanh penalty), u250 (the preset until 2026-12-07: the paper's 250 updates and discount 0.9 with
preactivation_l2 1, hidden 64, 64, n_step 5) and preset (u250 with 1,000 updates after each episode and discount
0.95); mirror (the preset with config.mirror, the road's left-right symmetry: every update mirrors a random
half of its transitions). Each seed trains episode by episode and drives the 250 m test route
after each, up to --episodes, stopping at the first test without disengagement. A seed's rows go to
benchmarks/results/lanefollow_state_<variant>_seed<S>.csv; a seed with rows is not run again. Writes a summary
JSON with the command: per seed, the episodes until the first test with at most one disengagement and until
the first with none.

    python benchmarks/lanefollow_state.py --out benchmarks/out/lanefollow_state
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from drive_in_a_day import episodes_until, read_rows, tested_episodes, write_rows

from dpgkit.algos import DDPG
from dpgkit.envs.lanefollow import STATE_MIRROR

ENV = "LaneFollowState-v0"
PAPER = DDPG.default_config("LaneFollow-v0")
"""Kendall et al.'s settings: the LaneFollow-v0 DDPG preset."""
U250 = {"updates_per_episode": PAPER.updates_per_episode, "gamma": PAPER.gamma}
VARIANTS = {
    "paper": U250 | {"hidden": PAPER.hidden, "n_step": PAPER.n_step, "preactivation_l2": PAPER.preactivation_l2},
    "u250": U250,
    "preset": {},
    "mirror": {"mirror": STATE_MIRROR},
}


def seed_rows(variant: str, seed: int, out: Path, episodes: int) -> list[dict]:
    """The test rows of one seed of one variant."""
    config = DDPG.default_config(ENV).replace(
        seed=seed,
        run_dir=str(out / f"{variant}_seed{seed}"),
        progress=False,
        eval_every=0,
        checkpoint_seconds=0.0,
        **VARIANTS[variant],
    )
    return tested_episodes(ENV, config, episodes, f"{variant} seed {seed}", clean_after=0)


def finite(episodes: float) -> int | None:
    """Episodes as an int, None for a miss (inf)."""
    return None if episodes == float("inf") else int(episodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/lanefollow_state")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    out, results_dir = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    started, summary = time.perf_counter(), {}
    for variant in VARIANTS:
        for seed in range(args.seeds):
            path = results_dir / f"lanefollow_state_{variant}_seed{seed}.csv"
            if not path.is_file() and variant in args.only:
                write_rows(path, seed_rows(variant, seed, out, args.episodes))
            if path.is_file():
                rows = read_rows(path)
                summary.setdefault(variant, {})[seed] = {
                    "episodes_to_at_most_one": finite(episodes_until(rows, 1)),
                    "episodes_to_none": finite(episodes_until(rows, 0)),
                    "disengagements": [r["disengagements"] for r in rows],
                }
    result = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "wall_seconds_this_call": round(time.perf_counter() - started, 1),
        "variants": {v: VARIANTS[v] for v in summary},
        "seeds": summary,
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (results_dir / f"lanefollow_state_summary_{stamp}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
