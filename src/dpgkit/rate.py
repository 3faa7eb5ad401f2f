"""The learner's rate: sampled transitions per inserted env step (Reverb's samples-per-insert), as learner calls due.

A learner call samples gradient_steps x batch_size transitions, so a target of samples_per_insert S means one call
per gradient_steps x batch_size / S env steps of each seed. The default S = gradient_steps x batch_size /
(train_freq x actors) gives one call every train_freq vector steps of the actors: today's local schedule, whatever
delivers the steps (one vector step at a time, or chunks from Ray workers).
"""

from __future__ import annotations

from fractions import Fraction

from dpgkit.config import Config


def samples_per_insert(config: Config) -> float:
    """The target of sampled transitions per inserted env step: config.samples_per_insert, or the local one."""
    return config.samples_per_insert or config.gradient_steps * config.batch_size / (
        config.train_freq * config.actors
    )


def steps_per_call(config: Config) -> int | Fraction:
    """Env steps of each seed per learner call at the target rate (an int for the local rate, so it is exact)."""
    if not config.samples_per_insert:
        return config.train_freq * config.actors
    return Fraction(config.gradient_steps * config.batch_size) / Fraction(config.samples_per_insert)


def calls_between(before: int, after: int, start: int, every: int | Fraction) -> int:
    """Learner calls due when the step count goes from before to after: the multiples of `every` in
    (before, after] that are at least `start` (the end of the warm-up)."""
    if after < start:
        return 0
    return int(after // every - max(before, start - 1) // every)
