"""Kendall et al. (2018), "Learning to Drive in a Day", Table I, in simulation on LaneFollow-v0.

Agents: Random (uniform actions), Zero (action [0, 0]: steering 0, constant speed), DDPG from pixels and DDPG from
a VAE-pretrained encoder (frozen; pretrained on five random-policy episodes of the same seed, as the paper), both
with the env's DDPG preset (presets.toml: the paper's settings). Every learning agent is tested on the held-out
250 m route in test mode after each training episode (the safety driver re-centres the car and counts a
disengagement), up to --episodes episodes; a seed stops early once it has passed episode 35 with a test without
disengagement. Each seed is its own process-local run (episodes are per seed: updates_per_episode follows the
first seed of a run).

--variant dpgkit runs the learning agents with VARIANTS["dpgkit"] over the preset instead (their files are named
<agent>-dpgkit). --vae-source, --vae-updates and --vae-beta change how the VAE is pretrained and --vae-trainable
lets the agent fine-tune it (the VAE agent's files then carry them: vae-<source>-u<updates>-b<beta>[-trainable]).
--pixels-variant V takes the pixel agent's rows (and runs) with VARIANTS[V] instead of --variant's.

Each finished seed's rows go to benchmarks/results/drive_in_a_day_<agent>_seed<S>.csv (episode, training
distance, training seconds, test distance and disengagements after that episode); a seed with committed rows is
not run again. Writes a summary JSON with the command (per seed: episodes, training meters and seconds until the
first test with at most one disengagement and until the first with none, the tests at episodes 11 and 35;
seconds per training episode) and a plot of test meters per disengagement against training episodes with the
paper's points.

    python benchmarks/drive_in_a_day.py --out benchmarks/out/drive
    python benchmarks/drive_in_a_day.py --out benchmarks/out/drive --variant dpgkit --only pixels vae
    python benchmarks/drive_in_a_day.py --out benchmarks/out/drive --variant dpgkit --only vae --vae-source safety \
        --vae-trainable
    python benchmarks/drive_in_a_day.py --out benchmarks/out/drive --variant dpgkit-u1000-mirror \
        --pixels-variant dpgkit --only vae --vae-source roads100 --vae-updates 10000 --episodes 35
        # the VAE agent that meets its target (RESULTS.md), against the pixel agent of the table
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpgkit.config import VAEConfig
from dpgkit.drive import drive_route, route_env
from dpgkit.envs.lanefollow import CAMERA_MIRROR

ENV = "LaneFollow-v0"
AGENTS = ("random", "zero", "pixels", "vae")
PAPER = {
    "random": {"m_per_disengagement": 7.35, "disengagements": 34},
    "zero": {"m_per_disengagement": 22.7, "disengagements": 11},
    "pixels": {
        "episodes": 35,
        "train_m": 298.8,
        "minutes": 37,
        "m_per_disengagement": 143.2,
        "disengagements": 1,
    },
    "vae": {"episodes": 11, "train_m": 195.5, "minutes": 15, "disengagements": 0},
}
"""Kendall et al. 2018, Table I (250 m route)."""
FIELDS = (
    "episode",
    "train_distance",
    "train_seconds",
    "test_distance",
    "disengagements",
    "m_per_disengagement",
)
CHECKPOINT_EPISODES = (11, 35)
SAFETY_DRIVER = {"safety_driver": True}
VAE_SOURCES = {
    "train": {},
    "safety": {"env_kwargs": SAFETY_DRIVER},
    "roads": {"env_kwargs": SAFETY_DRIVER, "episodes": 50, "episode_steps": 100},
    "roads100": {"env_kwargs": SAFETY_DRIVER, "episodes": 100, "episode_steps": 100},
}
"""The random-policy frames a VAE is pretrained on: VAEConfig fields over its defaults (LaneFollow-v0 as it is, five
episodes of at most 1,000 steps). train: the paper's (an episode ends when the car leaves its lane, so the frames
come from the first metres of five roads); safety: the safety driver re-centres the car instead, so each episode
drives on through its whole road; roads: the same 5,000 frames from fifty roads of 100 steps, so the VAE sees ten
times the road and verge colours (RESULTS.md, "The VAE's latent, probed"; from the command line `dpgkit
pretrain-vae --env LaneFollow-v0 --env-kwargs safety_driver True --episodes 50 --episode-steps 100`); roads100: a
hundred such roads, twice the frames and the palettes (RESULTS.md, "Twice the frames from twice the roads")."""


@dataclass(frozen=True)
class Pretraining:
    """How the VAE agent's encoder is pretrained (the frames' source, Adam updates, the KL weight), and whether the
    agent fine-tunes it (encoder_trainable) or keeps it frozen (the paper)."""

    source: str = "train"
    updates: int = VAEConfig.updates
    beta: float = VAEConfig.beta
    trainable: bool = False

    def pretrained_with(self) -> str:
        """-<source>-u<updates>-b<beta>: all the VAE was pretrained with."""
        return f"-{self.source}-u{self.updates}-b{self.beta:g}"

    def tag(self) -> str:
        """Empty for the defaults, else -<source>-u<updates>-b<beta>[-trainable] (in the VAE agent's file names)."""
        if self == Pretraining():
            return ""
        return self.pretrained_with() + ("-trainable" if self.trainable else "")

    def vae_file(self, seed: int) -> str:
        """The file name of a seed's VAE, named by all it was pretrained with (fine-tuning or not, the same VAE)."""
        return f"vae{self.pretrained_with()}_seed{seed}.npz"


DPGKIT = {"preactivation_l2": 1.0, "hidden": (64, 64), "n_step": 5}
DPGKIT_U1000 = DPGKIT | {"updates_per_episode": 1000, "gamma": 0.95}
VARIANTS = {
    "paper": {},
    "dpgkit": DPGKIT,
    "dpgkit-mirror": DPGKIT | {"mirror": CAMERA_MIRROR},
    "dpgkit-u1000": DPGKIT_U1000,
    "dpgkit-u1000-ln": DPGKIT_U1000 | {"torso": "layernorm"},
    "dpgkit-u1000-mirror": DPGKIT_U1000 | {"mirror": CAMERA_MIRROR},
}
"""Settings of the learning agents over the env's DDPG preset. paper: the preset (Kendall et al.'s settings).
dpgkit: HER's pre-tanh penalty against the saturated steering, two hidden layers of 64 and 5-step returns (what
let DDPG learn on LaneFollowState-v0 within a few episodes, RESULTS.md). dpgkit-u1000: also 1,000 updates after
each episode (the paper's 250 x 4) and discount 0.95 (on LaneFollowState-v0 the median first clean test falls
from 10 to 3.5 episodes over 10 seeds, RESULTS.md). dpgkit-u1000-ln: also Acme's LayerNormMLP torso (tried
against the frozen VAE agent's unstable seeds: no better, RESULTS.md). dpgkit-mirror, dpgkit-u1000-mirror: also
every update mirrors a random half of its transitions left-right (config.mirror, the road's symmetry)."""


def baseline_rows(agent: str, seed: int) -> list[dict]:
    """One test drive of the random or zero policy (episode 0: nothing is trained)."""
    env = route_env(ENV)
    env.action_space.seed(seed)
    act = (
        (lambda obs: env.action_space.sample())
        if agent == "random"
        else (lambda obs: np.zeros(2, np.float32))
    )
    run = drive_route(act, env)
    env.close()
    return [row(0, 0.0, 0.0, run)]


def row(episode: int, train_distance: float, train_seconds: float, run) -> dict:
    """A result row of one test drive after `episode` training episodes."""
    return {
        "episode": episode,
        "train_distance": round(train_distance, 3),
        "train_seconds": round(train_seconds, 3),
        "test_distance": round(run.distance, 3),
        "disengagements": run.disengagements,
        "m_per_disengagement": round(run.meters_per_disengagement, 3),
    }


def pretrained_encoder(out: Path, seed: int, pretraining: Pretraining) -> tuple[Path, float]:
    """The VAE of this seed (random-policy frames of its source), trained unless already in out; and its seconds."""
    from dpgkit.pretrain import pretrain_vae

    path = out / pretraining.vae_file(seed)
    started = time.perf_counter()
    if not path.is_file():
        config = VAEConfig(
            env=ENV,
            **VAE_SOURCES[pretraining.source],
            out=str(path),
            seed=seed,
            updates=pretraining.updates,
            beta=pretraining.beta,
            progress=False,
        )
        pretrain_vae(config)
    return path, time.perf_counter() - started


def agent_name(agent: str, variant: str, pretraining: Pretraining = Pretraining()) -> str:
    """The agent's name in file names: the paper's variant and VAE pretraining keep the bare name."""
    name = agent + (pretraining.tag() if agent == "vae" else "")
    return name if variant == "paper" or agent in ("random", "zero") else f"{name}-{variant}"


def learning_rows(
    agent: str, seed: int, out: Path, episodes: int, pretraining: Pretraining, variant: str = "paper"
) -> list[dict]:
    """Train DDPG (pixels, or from the seed's VAE; the variant's settings) episode by episode, testing on the
    route after each."""
    from dpgkit.algos import DDPG

    run_dir = out / f"{agent_name(agent, variant, pretraining)}_seed{seed}"
    config = DDPG.default_config(ENV).replace(
        seed=seed,
        run_dir=str(run_dir),
        progress=False,
        eval_every=0,
        checkpoint_seconds=0.0,
        **VARIANTS[variant],
    )
    if agent == "vae":
        path, seconds = pretrained_encoder(out, seed, pretraining)
        print(f"  VAE of seed {seed}: {path} ({seconds:.0f} s)", flush=True)
        config = config.replace(encoder=f"vae:{path}", encoder_trainable=pretraining.trainable)
    return tested_episodes(ENV, config, episodes, f"{agent} seed {seed}")


def tested_episodes(
    env_id: str, config, episodes: int, label: str, clean_after: int = CHECKPOINT_EPISODES[-1]
):
    """Train DDPG on env_id episode by episode, driving its test route after each, up to episodes or the first
    test without disengagement after clean_after episodes; a row per test."""
    from dpgkit.algos import DDPG
    from dpgkit.train import new_stats

    ddpg = DDPG(env_id, config=config)
    trainer, stats = ddpg.trainer, new_stats(1)
    test_env = route_env(env_id)
    rows, train_seconds, clean = [], 0.0, False
    while len(rows) < episodes and not clean:
        started = time.perf_counter()
        while len(stats["returns"][0]) == len(rows):
            trainer.iteration(stats)
        trainer.driver.check_losses(stats)
        train_seconds += time.perf_counter() - started
        run = drive_route(ddpg.act, test_env)
        rows.append(row(len(rows) + 1, float(np.sum(stats["returns"][0])), train_seconds, run))
        clean = rows[-1]["disengagements"] == 0 and len(rows) >= clean_after
        print(f"  {label} episode {len(rows)}: {run.summary()}", flush=True)
    test_env.close()
    ddpg.close()
    return rows


def first_reaching(rows: list[dict], most_disengagements: int) -> dict | None:
    """Episodes, training meters and seconds until the first test with at most this many disengagements."""
    for r in rows:
        if r["episode"] and r["disengagements"] <= most_disengagements:
            return {k: r[k] for k in ("episode", "train_distance", "train_seconds")}
    return None


def at_episode(rows: list[dict], episode: int) -> dict | None:
    """The test after `episode` training episodes (None if the seed did not train that long)."""
    for r in rows:
        if r["episode"] == episode:
            return {k: r[k] for k in ("test_distance", "disengagements", "m_per_disengagement")}
    return None


def episodes_until(rows: list[dict], most_disengagements: int) -> float:
    """Training episodes until the first test with at most this many disengagements (inf: never)."""
    reached = first_reaching(rows, most_disengagements)
    return reached["episode"] if reached else float("inf")


def targets(results: dict[str, dict[int, list[dict]]]) -> dict:
    """The issue's targets: pixels at most one disengagement within 35 episodes on >= 3 of 5 seeds; the VAE
    without disengagement within 11 episodes (median), in no more episodes than pixels on the same seeds."""
    pixels, vae = results.get("pixels", {}), results.get("vae", {})
    within_35 = [s for s, rows in pixels.items() if episodes_until(rows, 1) <= 35]
    vae_clean = {s: episodes_until(rows, 0) for s, rows in vae.items()}
    both = sorted(set(pixels) & set(vae))
    return {
        "pixels_seeds_at_most_one_within_35": within_35,
        "pixels_target_met": len(within_35) >= 3,
        "vae_episodes_to_no_disengagement": vae_clean,
        "vae_median_episodes_to_no_disengagement": float(np.median(list(vae_clean.values())))
        if vae
        else None,
        "vae_target_met": bool(vae) and float(np.median(list(vae_clean.values()))) <= 11,
        "vae_not_slower_than_pixels_on_seeds": {
            s: vae_clean[s] <= episodes_until(pixels[s], 0) for s in both
        },
    }


def seed_summary(rows: list[dict]) -> dict:
    """What Table I reports for one seed."""
    trained = [r for r in rows if r["episode"]]
    if not trained:
        return {k: rows[0][k] for k in ("test_distance", "disengagements", "m_per_disengagement")}
    seconds = trained[-1]["train_seconds"] / len(trained)
    return {
        "episodes_run": len(trained),
        "at_most_one_disengagement": first_reaching(rows, 1),
        "no_disengagement": first_reaching(rows, 0),
        **{f"episode_{e}": at_episode(rows, e) for e in CHECKPOINT_EPISODES},
        "seconds_per_training_episode": round(seconds, 2),
    }


def read_rows(path: Path) -> list[dict]:
    """Rows of a committed CSV, typed."""
    with path.open() as f:
        return [
            {k: (int(v) if k in ("episode", "disengagements") else float(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write a seed's rows (atomic: a killed run leaves no partial CSV)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def plot(results: dict[str, dict[int, list[dict]]], out: Path) -> Path:
    """Test meters per disengagement against training episodes, per seed, with the paper's points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = {"pixels": "tab:blue", "vae": "tab:orange", "random": "tab:gray", "zero": "tab:green"}
    labels = {"pixels": "DDPG from pixels", "vae": "DDPG from the VAE", "random": "Random", "zero": "Zero"}
    for agent in ("pixels", "vae"):
        for i, rows in enumerate(results.get(agent, {}).values()):
            x = [r["episode"] for r in rows]
            ax.plot(
                x,
                [r["m_per_disengagement"] for r in rows],
                color=colors[agent],
                alpha=0.6,
                label=labels[agent] if i == 0 else None,
            )
    for agent in ("random", "zero"):
        values = [rows[0]["m_per_disengagement"] for rows in results.get(agent, {}).values()]
        if values:
            ax.axhline(np.mean(values), color=colors[agent], linestyle=":", label=f"{labels[agent]} (mean)")
    ax.scatter(
        [35],
        [143.2],
        color=colors["pixels"],
        marker="*",
        s=200,
        edgecolor="k",
        zorder=5,
        label="paper: pixels, 35 episodes",
    )
    ax.scatter(
        [11],
        [250.0],
        color=colors["vae"],
        marker="*",
        s=200,
        edgecolor="k",
        zorder=5,
        label="paper: VAE, 11 episodes (no disengagement)",
    )
    for agent, color in (("random", "tab:gray"), ("zero", "tab:green")):
        ax.axhline(
            PAPER[agent]["m_per_disengagement"],
            color=color,
            linestyle="--",
            alpha=0.5,
            label=f"paper: {labels[agent]}",
        )
    ax.set(
        xlabel="training episodes",
        ylabel="test meters per disengagement (250 m route)",
        yscale="log",
        title="LaneFollow-v0: Kendall et al. 2018, Table I",
    )
    ax.legend(fontsize=7)
    fig.savefig(out, dpi=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/out/drive")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument("--episodes", type=int, default=100, help="cap of training episodes per seed")
    parser.add_argument("--only", nargs="*", choices=AGENTS, default=list(AGENTS))
    parser.add_argument(
        "--vae-updates", type=int, default=Pretraining.updates, help="VAE pretraining updates"
    )
    parser.add_argument(
        "--vae-beta", type=float, default=Pretraining.beta, help="VAE pretraining's KL weight"
    )
    parser.add_argument("--vae-trainable", action="store_true", help="the VAE agent fine-tunes its encoder")
    parser.add_argument(
        "--vae-source", choices=list(VAE_SOURCES), default=Pretraining.source, help="VAE pretraining's frames"
    )
    parser.add_argument(
        "--variant", choices=list(VARIANTS), default="paper", help="learning agents' settings"
    )
    parser.add_argument(
        "--pixels-variant",
        choices=list(VARIANTS),
        default=None,
        help="the pixel agent's settings, when not --variant's (the VAE target compares against it)",
    )
    args = parser.parse_args()
    pretraining = Pretraining(args.vae_source, args.vae_updates, args.vae_beta, args.vae_trainable)
    out, results_dir = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, dict[int, list[dict]]] = {}
    for agent in AGENTS:
        variant = args.pixels_variant if agent == "pixels" and args.pixels_variant else args.variant
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            path = results_dir / f"drive_in_a_day_{agent_name(agent, variant, pretraining)}_seed{seed}.csv"
            if not path.is_file() and agent in args.only:
                print(f"{agent} seed {seed}", flush=True)
                rows = (
                    baseline_rows(agent, seed)
                    if agent in ("random", "zero")
                    else learning_rows(agent, seed, out, args.episodes, pretraining, variant)
                )
                write_rows(path, rows)
            if path.is_file():
                results.setdefault(agent, {})[seed] = read_rows(path)
    summary = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "variant": {"name": args.variant, "over_the_preset": VARIANTS[args.variant]},
        "pixels_variant": args.pixels_variant or args.variant,
        "vae_pretraining": asdict(pretraining),
        "wall_seconds_this_call": round(time.perf_counter() - started, 1),
        "paper": PAPER,
        "targets": targets(results),
        "agents": {a: {s: seed_summary(rows) for s, rows in seeds.items()} for a, seeds in results.items()},
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    pixels_tag = f"-pixels-{args.pixels_variant}" if args.pixels_variant else ""
    name = f"{args.variant}{pretraining.tag()}{pixels_tag}"
    (results_dir / f"drive_in_a_day_{name}_summary_{stamp}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary["agents"], indent=1))
    print(f"plot: {plot(results, results_dir / f'drive_in_a_day_{name}.png')}")


if __name__ == "__main__":
    main()
