"""Pure JAX learner: TD targets, losses and the one update shared by every algorithm."""

from dpgkit.learn.learner import Batch, LearnerSpec, LearnerState, init_learner, update_block

__all__ = ["Batch", "LearnerSpec", "LearnerState", "init_learner", "update_block"]
