"""n-step writer: a table of hand-computed returns and discounts (n = 3, gamma = 0.5), n = 1 against the
one-step transition, and pending steps held as copies."""

import numpy as np
import pytest

from dpgkit.replay.nstep import NStepWriter

GAMMA = 0.5


def observation(copy, t):
    """Observation s_t of a copy, a (2, 2) array that identifies both: value 100 copy + t."""
    return np.full((2, 2), 100.0 * copy + t)


def run(steps, n=3, copies=1):
    """Push steps (per step, per copy: (t, reward, terminated, truncated), s_t -> s_{t+1}); collect
    (push index, copy, t of obs, reward, discount, t of next_obs) of every transition written."""
    writer = NStepWriter(n, GAMMA, copies)
    out = []
    for i, step in enumerate(steps):
        ts = [s[0] for s in step]
        finished = writer.push(
            np.stack([observation(c, t) for c, t in enumerate(ts)]),
            np.array([[t, -t] for t in ts], np.float32),
            np.array([s[1] for s in step]),
            np.array([s[2] for s in step]),
            np.array([s[3] for s in step]),
            np.stack([observation(c, t + 1) for c, t in enumerate(ts)]),
        )
        for tr in finished:
            t_obs = tr["obs"][0, 0] - 100.0 * tr["copy"]
            assert tr["obs"].shape == (2, 2) and tr["next_obs"].shape == (2, 2)
            np.testing.assert_array_equal(tr["action"], [t_obs, -t_obs])
            out.append(
                (
                    i,
                    tr["copy"],
                    t_obs,
                    tr["reward"],
                    tr["discount"],
                    tr["next_obs"][0, 0] - 100.0 * tr["copy"],
                )
            )
    return writer, out


def one(t, reward, terminated=False, truncated=False):
    return [(t, reward, terminated, truncated)]


CASES = {
    # rewards 1, 2, 4, 8: R(s0) = 1 + 0.5 * 2 + 0.25 * 4 = 3, R(s1) = 2 + 0.5 * 4 + 0.25 * 8 = 6
    "mid_episode": (
        [one(0, 1.0), one(1, 2.0), one(2, 4.0), one(3, 8.0)],
        [(2, 0, 0, 3.0, 0.125, 3), (3, 0, 1, 6.0, 0.125, 4)],
    ),
    # terminated on the 4th step: s1 (3 steps, R 6), s2 (R 4 + 4 = 8), s3 (R 8), all discount 0 to s4
    "termination_inside_window": (
        [one(0, 1.0), one(1, 2.0), one(2, 4.0), one(3, 8.0, terminated=True)],
        [(2, 0, 0, 3.0, 0.125, 3), (3, 0, 1, 6.0, 0.0, 4), (3, 0, 2, 8.0, 0.0, 4), (3, 0, 3, 8.0, 0.0, 4)],
    ),
    # the same truncated: discount gamma^m with m = 3, 2, 1
    "truncation_inside_window": (
        [one(0, 1.0), one(1, 2.0), one(2, 4.0), one(3, 8.0, truncated=True)],
        [(2, 0, 0, 3.0, 0.125, 3), (3, 0, 1, 6.0, 0.125, 4), (3, 0, 2, 8.0, 0.25, 4), (3, 0, 3, 8.0, 0.5, 4)],
    ),
    # termination wins over truncation on the same step
    "terminated_and_truncated": (
        [one(0, 1.0), one(1, 2.0, terminated=True, truncated=True)],
        [(1, 0, 0, 2.0, 0.0, 2), (1, 0, 1, 2.0, 0.0, 2)],
    ),
    # two steps, then terminal: R(s0) = 1 + 0.5 * 2 = 2, R(s1) = 2; a new episode starts from an empty queue
    "episode_shorter_than_n_terminated": (
        [one(0, 1.0), one(1, 2.0, terminated=True), one(0, 4.0), one(1, 4.0), one(2, 4.0)],
        [(1, 0, 0, 2.0, 0.0, 2), (1, 0, 1, 2.0, 0.0, 2), (4, 0, 0, 7.0, 0.125, 3)],
    ),
    "episode_shorter_than_n_truncated": (
        [one(0, 1.0), one(1, 2.0, truncated=True)],
        [(1, 0, 0, 2.0, 0.25, 2), (1, 0, 1, 2.0, 0.5, 2)],
    ),
    "one_step_episode": ([one(0, -3.0, terminated=True)], [(0, 0, 0, -3.0, 0.0, 1)]),
    # copy 0 terminates at its 2nd step and restarts; copy 1 runs on and is truncated at its 5th step
    "two_copies_ending_at_different_steps": (
        [
            [(0, 1.0, False, False), (0, 2.0, False, False)],
            [(1, 2.0, True, False), (1, 2.0, False, False)],
            [(0, 4.0, False, False), (2, 2.0, False, False)],
            [(1, 4.0, False, False), (3, 2.0, False, False)],
            [(2, 4.0, False, False), (4, 8.0, False, True)],
        ],
        [
            (1, 0, 0, 2.0, 0.0, 2),
            (1, 0, 1, 2.0, 0.0, 2),
            (2, 1, 0, 3.5, 0.125, 3),  # 2 + 1 + 0.5
            (3, 1, 1, 3.5, 0.125, 4),
            (4, 0, 0, 7.0, 0.125, 3),  # 4 + 2 + 1
            (4, 1, 2, 5.0, 0.125, 5),  # 2 + 1 + 8 / 4
            (4, 1, 3, 6.0, 0.25, 5),  # 2 + 8 / 2
            (4, 1, 4, 8.0, 0.5, 5),
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed_cases(name):
    steps, expected = CASES[name]
    _, out = run(steps, copies=len(steps[0]))
    assert out == expected


def test_pending_windows_of_other_copy_untouched():
    writer, _ = run(CASES["two_copies_ending_at_different_steps"][0][:2], copies=2)
    assert len(writer.queues[0]) == 0  # copy 0 ended and was flushed
    assert [step[2] for step in writer.queues[1]] == [2.0, 2.0]  # copy 1 still holds its two steps


def test_n1_is_the_plain_transition():
    rng = np.random.default_rng(0)
    gamma, copies = 0.99, 3
    writer = NStepWriter(1, gamma, copies)
    for _ in range(50):
        obs, next_obs = rng.normal(size=(copies, 4)), rng.normal(size=(copies, 4))
        action, reward = rng.normal(size=(copies, 2)), rng.normal(size=copies)
        terminated, truncated = rng.random(copies) < 0.2, rng.random(copies) < 0.2
        out = writer.push(obs, action, reward, terminated, truncated, next_obs)
        assert [tr["copy"] for tr in out] == list(range(copies))
        for c, tr in enumerate(out):
            np.testing.assert_array_equal(tr["obs"], obs[c])
            np.testing.assert_array_equal(tr["action"], action[c])
            np.testing.assert_array_equal(tr["next_obs"], next_obs[c])
            assert tr["reward"] == reward[c]
            assert tr["discount"] == pytest.approx(gamma * (1.0 - terminated[c]), rel=1e-15)


def test_inputs_are_copied():
    writer = NStepWriter(2, GAMMA, 1)
    obs = np.zeros((1, 3))
    writer.push(obs, np.zeros((1, 1)), np.array([1.0]), np.array([False]), np.array([False]), obs + 1)
    obs[:] = 99.0  # a collector reusing its buffer must not change the pending step
    (tr,) = writer.push(obs, np.zeros((1, 1)), np.array([1.0]), np.array([False]), np.array([False]), obs)
    np.testing.assert_array_equal(tr["obs"], [0.0, 0.0, 0.0])
    assert tr["reward"] == 1.5
