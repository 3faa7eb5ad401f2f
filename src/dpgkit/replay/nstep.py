"""n-step transitions from environment copies stepping in lockstep, in host numpy."""

from __future__ import annotations

from collections import deque

import numpy as np

from dpgkit.trees import copy_entry, entry


def discounted_return(rewards: list[float], gamma: float) -> float:
    """R = sum_{k<m} gamma^k r_{t+k+1} over the m rewards of a window."""
    return float(sum(gamma**k * r for k, r in enumerate(rewards)))


class NStepWriter:
    """Per copy, a queue of the last (obs, action, reward) steps; a window of n steps becomes one transition.

    A transition is {copy, obs, action, reward, discount, next_obs}: reward the n-step return of the window and
    discount gamma^m with m its length (n, or fewer when the episode ended in it), or 0 after a termination.
    """

    def __init__(self, n: int, gamma: float, copies: int):
        self.n, self.gamma, self.copies = n, gamma, copies
        self.queues: list[deque] = [deque() for _ in range(copies)]

    def transition(self, copy: int, start: int, terminated: bool, next_obs) -> dict:
        """The transition from the start-th queued step of copy to next_obs."""
        queue = self.queues[copy]
        obs, action, _ = queue[start]
        m = len(queue) - start
        return {
            "copy": copy,
            "obs": obs,
            "action": action,
            "reward": discounted_return([queue[k][2] for k in range(start, len(queue))], self.gamma),
            "discount": 0.0 if terminated else self.gamma**m,
            "next_obs": copy_entry(next_obs),
        }

    def push(self, obs, action, reward, terminated, truncated, next_obs) -> list[dict]:
        """Add one step of every copy (leading axis copies); return the transitions it finishes.

        A full window of n steps gives one transition (discount gamma^n); when an episode ends (terminated or
        truncated, next_obs then the final observation) every pending window of that copy is written out and
        its queue emptied: discount 0 after termination, gamma^m after truncation with m the window's length.
        """
        finished = []
        for c, queue in enumerate(self.queues):
            queue.append((copy_entry(obs, c), np.array(action[c]), float(reward[c])))
            if terminated[c] or truncated[c]:
                finished += [
                    self.transition(c, k, bool(terminated[c]), entry(next_obs, c)) for k in range(len(queue))
                ]
                queue.clear()
            elif len(queue) == self.n:
                finished.append(self.transition(c, 0, False, entry(next_obs, c)))
                queue.popleft()
        return finished

    def reset(self) -> None:
        """Drop every pending window (the copies restart their episodes)."""
        for queue in self.queues:
            queue.clear()
