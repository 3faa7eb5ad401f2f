"""LaneFollow-v0: road generation, centre-line geometry, the bicycle model, the row renderer and test mode."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dpgkit.envs  # noqa: F401  (registers LaneFollow-v0)
from dpgkit.config import DDPGConfig
from dpgkit.driver import learner_spec
from dpgkit.envs import lanefollow as lf
from dpgkit.envs import obs_spec
from dpgkit.learn.learner import mirror_where

PAINT = {
    "marking_color": (240.0, 200.0, 20.0),
    "road_color": (80.0, 80.0, 80.0),
    "verge_color": (40.0, 150.0, 40.0),
    "light": 1.0,
    "tint": (1.0, 1.0, 1.0),
    "width": 3.0,
    "marking_width": 0.2,
    "shoulder": 0.4,
}


def straight_road(length: float = 600.0, **appearance) -> lf.Road:
    """A straight road along +x with the flat, untextured test paint unless told otherwise."""
    return lf.road_from_curvature(np.zeros(int(length / lf.ROAD_SPACING) + 1), **{**PAINT, **appearance})


def make(mode: str = "train", road: lf.Road | None = None, **kwargs):
    """The unwrapped env, reset (on road when given)."""
    env = gym.make("LaneFollow-v0", mode=mode, **kwargs).unwrapped
    env.reset(seed=0, options={"road": road} if road is not None else None)
    return env


def nearest_paint(pixel: np.ndarray) -> str:
    """Which of the test paints (marking, road, verge) a pixel's colour is closest to."""
    names = ("marking", "road", "verge")
    colours = np.array([PAINT[f"{n}_color"] for n in names])
    return names[int(np.argmin(np.abs(colours - pixel.astype(float)).sum(1)))]


def pinhole_row(size: int, row: int) -> tuple[float, float]:
    """(depth ahead, metres per pixel column) of an image row, from the camera's pinhole geometry."""
    focal = 0.5 * size / math.tan(0.5 * lf.CAMERA_FOV)
    yn = (row + 0.5 - 0.5 * size) / focal
    ray = lf.CAMERA_HEIGHT / (math.sin(lf.CAMERA_PITCH) + yn * math.cos(lf.CAMERA_PITCH))
    return ray * (math.cos(lf.CAMERA_PITCH) - yn * math.sin(lf.CAMERA_PITCH)), ray / focal


def column_of(size: int, metres_per_column: float, left: float) -> int:
    """The pixel column whose centre sees the ground `left` metres to the left of the camera."""
    return round(0.5 * size - left / metres_per_column - 0.5)


def test_registered_without_time_limit_and_spaces():
    assert gym.spec("LaneFollow-v0").max_episode_steps is None
    env = gym.make("LaneFollow-v0", image_size=32, mode="train", max_distance=100.0, render_mode=None)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
    assert set(info) >= {"distance", "disengagements", "lateral_offset", "heading_error"}
    for _ in range(20):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(reward, float)


def test_check_env_passes():
    env = gym.make("LaneFollow-v0", render_mode="rgb_array").unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=False)


def test_road_is_reproducible_by_seed():
    a, b = lf.generate_road(7, 200.0), lf.generate_road(7, 200.0)
    for name in ("curvature", "x", "y", "heading", "texture"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.width, a.marking, a.marking_color, a.road_color, a.verge_color, a.light) == (
        b.width,
        b.marking,
        b.marking_color,
        b.road_color,
        b.verge_color,
        b.light,
    )
    assert a.length >= 200.0 + lf.ROAD_MARGIN - lf.ROAD_SPACING
    first, second = make(), make()
    np.testing.assert_array_equal(first.reset(seed=11)[0]["image"], second.reset(seed=11)[0]["image"])


def test_roads_vary_across_seeds():
    roads = [lf.generate_road(seed, 200.0) for seed in range(8)]
    assert len({r.curvature.tobytes() for r in roads}) == 8
    assert len({r.width for r in roads}) == 8
    assert {r.marking for r in roads} == {"solid", "dashed"}
    assert len({r.marking_color for r in roads}) > 1
    assert len({r.road_color for r in roads}) == 8 and len({r.verge_color for r in roads}) == 8
    assert len({r.light for r in roads}) == 8
    curvature = np.concatenate([r.curvature for r in roads])
    assert np.abs(curvature).max() <= lf.CURVATURE_RANGE[1] + 1e-12
    assert (np.abs(curvature) < 1e-9).mean() > 0.1 and (curvature > 0).any() and (curvature < 0).any()
    assert lf.CURVATURE_RANGE[1] < math.tan(lf.MAX_STEER) / lf.WHEELBASE  # every bend can be taken


def test_train_mode_never_builds_the_test_route():
    assert lf.train_road_seed(lf.TEST_ROUTE_SEED) != lf.TEST_ROUTE_SEED
    assert lf.train_road_seed(5) == 5
    train = make()
    train.reset(seed=lf.TEST_ROUTE_SEED)
    route = lf.build_test_route()
    assert train.road.curvature.tobytes() != route.curvature[: len(train.road.curvature)].tobytes()
    test = make("test")
    for seed in (0, 3):
        test.reset(seed=seed)
        np.testing.assert_array_equal(test.road.curvature, route.curvature)
    assert lf.TEST_ROUTE_LENGTH <= route.length


@pytest.mark.parametrize(
    "angle, lateral, heading_error", [(0.3, 0.0, 0.0), (1.0, 0.8, 0.2), (2.5, -1.1, -0.4), (4.0, 0.4, 1.5)]
)
def test_projection_on_a_circular_road(angle, lateral, heading_error):
    radius = 20.0
    road = lf.road_from_curvature(np.full(int(2 * math.pi * radius / lf.ROAD_SPACING), 1.0 / radius))
    # the circle turns left around (0, radius); left of the centre line is towards the middle
    x = (radius - lateral) * math.sin(angle)
    y = radius - (radius - lateral) * math.cos(angle)
    s, offset, error, index = lf.project(road, x, y, angle + heading_error)
    chord_error = abs(lateral) * lf.ROAD_SPACING / (2 * radius)  # the centre line is a polyline of chords
    assert s == pytest.approx(radius * angle, abs=chord_error + 1e-3)
    assert offset == pytest.approx(lateral, abs=1e-3)
    assert error == pytest.approx(heading_error, abs=2e-3)
    local = lf.project(road, x, y, angle + heading_error, hint=index + 10)
    assert local[:3] == pytest.approx((s, offset, error), abs=1e-9)
    pose = lf.pose_on_road(road, s, offset, error)
    assert pose == pytest.approx((x, y, angle + heading_error), abs=chord_error + 1e-3)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_straight_policy_on_a_straight_road_never_disengages(mode):
    env = make(mode, road=straight_road(), max_distance=300.0)
    done, info, steps = False, {}, 0
    while not done:
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        assert not terminated and reward >= 0.0
        done, steps = truncated, steps + 1
    route = 300.0 if mode == "train" else lf.TEST_ROUTE_LENGTH
    assert info["disengagements"] == 0 and abs(info["lateral_offset"]) < 1e-9
    assert route <= info["distance"] < route + lf.V_MAX * lf.DT
    assert steps < env.max_steps


@pytest.mark.parametrize("steering", [0.1, -0.25])
def test_constant_steering_leaves_the_lane_where_the_bicycle_predicts(steering):
    env = make(road=straight_road())
    env.set_pose(0.0, 0.0, 0.0, speed=2.0, steering=steering)
    radius = lf.WHEELBASE / math.tan(abs(steering) * lf.MAX_STEER)
    turned = math.acos(1.0 - 0.5 * PAINT["width"] / radius)  # the circle's angle where |y| = width / 2
    path, terminated, info = 0.0, False, {}
    while not terminated:
        before = path
        obs, _, terminated, truncated, info = env.step(np.array([steering, 0.2], np.float32))
        path += float(obs["speed"][0]) * lf.DT
        assert not truncated
    assert before < radius * turned <= path
    assert math.copysign(1.0, info["lateral_offset"]) == math.copysign(1.0, steering)
    assert abs(info["lateral_offset"]) > 0.5 * PAINT["width"]
    assert info["distance"] == pytest.approx(radius * math.sin(path / radius), abs=1e-6)
    assert abs(info["distance"] - radius * math.sin(turned)) < lf.V_MAX * lf.DT


def test_truncated_at_max_distance_and_at_the_step_cap():
    env = make(road=straight_road(), max_distance=20.0)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        steps += 1
    assert info["distance"] >= 20.0 and steps < lf.step_cap(20.0)
    env.reset(seed=0, options={"road": straight_road()})
    crawl = 0.3 / (0.5 * lf.V_MAX) - 1.0  # a set-point of 0.3 m/s: above the stall speed, below the cap's average
    for step in range(1, lf.step_cap(20.0) + 1):
        _, _, terminated, truncated, info = env.step(np.array([0.0, crawl], np.float32))
        assert not terminated and truncated == (step == lf.step_cap(20.0))
    assert info["distance"] < 20.0


def test_a_stalled_car_ends_a_training_episode_and_is_a_disengagement_in_test_mode():
    env = make(road=straight_road())
    stop = np.array([0.0, -1.0], np.float32)
    slow = 0
    for _ in range(200):
        _, _, terminated, truncated, _ = env.step(stop)
        slow = slow + 1 if env.speed < lf.STALL_SPEED else 0
        if terminated or truncated:
            break
    assert terminated and not truncated and slow == lf.STALL_STEPS
    env = make("test", road=straight_road())
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(stop)
        assert not terminated and not truncated
        if info["disengagements"]:
            break
    assert info["disengagements"] == 1 and env.speed == lf.INITIAL_SPEED and abs(info["lateral_offset"]) < 1e-9


def test_image_is_the_same_for_the_same_pose_and_changes_when_the_car_moves_or_turns():
    env, twin = make(), make()
    env.reset(seed=3)
    twin.reset(seed=3)
    pose = lf.pose_on_road(env.road, 30.0, 0.3, 0.05)
    image = env.set_pose(*pose)["image"]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, twin.set_pose(*pose)["image"])
    moved = env.step(np.array([0.0, 1.0], np.float32))[0]["image"]
    assert (moved != image).mean() > 0.05
    np.testing.assert_array_equal(env.set_pose(*pose)["image"], image)
    x, y, heading = pose
    assert (env.set_pose(x, y, heading + 0.05)["image"] != image).mean() > 0.05


@pytest.mark.parametrize("lateral", [0.0, 0.5, -0.7])
def test_lane_markings_appear_where_the_geometry_puts_them(lateral):
    env = make(road=straight_road(marking="solid"))
    image = env.set_pose(*lf.pose_on_road(env.road, 10.0, lateral))["image"]
    half, m = 0.5 * PAINT["width"], 0.5 * PAINT["marking_width"]
    # the lowest row that sees past the verge on both sides, its pixels narrower than the marking
    row = max(
        r for r in range(64) if pinhole_row(64, r)[1] * 32 > half + PAINT["shoulder"] + 1.0 + abs(lateral)
    )
    _, per_column = pinhole_row(64, row)
    assert per_column < 2 * m  # so the pixel nearest a marking's centre is at least half paint
    expected = {
        -lateral: "marking",
        half - m - lateral: "marking",
        -half + m - lateral: "marking",
        0.5 * half - lateral: "road",
        -0.5 * half - lateral: "road",
        half + PAINT["shoulder"] + 0.6 - lateral: "verge",
        -half - PAINT["shoulder"] - 0.6 - lateral: "verge",
    }
    for left, paint in expected.items():
        assert nearest_paint(image[row, column_of(64, per_column, left)]) == paint, (left, paint)
    assert np.abs(image[0, 0] - np.array(env.road.sky_color)).max() < 10  # sky at the top


def test_dashes_of_the_centre_line_appear_where_the_geometry_puts_them():
    env = make(road=straight_road(marking="dashed", dash_period=6.0, dash_duty=0.5))
    row = 60
    depth, per_column = pinhole_row(64, row)
    centre = column_of(64, per_column, 0.0)
    for dash_phase, paint in ((1.5, "marking"), (4.5, "road")):
        image = env.set_pose(*lf.pose_on_road(env.road, 60.0 + dash_phase - depth))["image"]
        assert nearest_paint(image[row, centre]) == paint


def test_safety_driver_recentres_and_meters_per_disengagement_match_the_hand_count():
    speed, steering, steps = 2.5, 0.3, 400
    env = make("test", road=straight_road())
    env.set_pose(0.0, 0.0, 0.0, speed=speed, steering=steering)
    radius = lf.WHEELBASE / math.tan(steering * lf.MAX_STEER)
    arc = speed * lf.DT  # the action's set-point is the current speed, so every step drives this far
    turned = math.acos(1.0 - 0.5 * PAINT["width"] / radius)
    per_cycle = math.floor(radius * turned / arc) + 1  # steps from the centre line until out of the lane
    count = 0
    for step in range(1, steps + 1):
        _, _, terminated, truncated, info = env.step(np.array([steering, 0.0], np.float32))
        assert not terminated and not truncated
        if step % per_cycle == 0:
            count += 1
            assert abs(info["lateral_offset"]) < 1e-9 and abs(info["heading_error"]) < 1e-9
        else:
            assert 0.0 < info["lateral_offset"] <= 0.5 * PAINT["width"]
        assert info["disengagements"] == count
    cycle_distance = radius * math.sin(per_cycle * arc / radius)
    distance = count * cycle_distance + radius * math.sin((steps % per_cycle) * arc / radius)
    assert info["distance"] == pytest.approx(distance, abs=1e-6)
    measured = lf.meters_per_disengagement(info["distance"], info["disengagements"])
    assert count > 5 and measured == pytest.approx(distance / count, abs=1e-6)


@pytest.mark.parametrize(("mode", "safety_driver"), [("train", True), ("test", False)])
def test_the_safety_driver_can_be_put_into_train_mode_and_taken_out_of_test_mode(mode, safety_driver):
    env = make(mode, road=straight_road(), safety_driver=safety_driver, max_distance=40.0)
    env.set_pose(0.0, 0.0, 0.0, speed=2.5, steering=0.3)
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(np.array([0.3, 0.0], np.float32))
        if terminated or truncated or info["disengagements"]:
            break
    assert terminated != safety_driver and info["disengagements"] == int(safety_driver)
    if safety_driver:
        assert abs(info["lateral_offset"]) < 1e-9 and abs(info["heading_error"]) < 1e-9
    else:
        assert abs(info["lateral_offset"]) > 0.5 * PAINT["width"]


def test_meters_per_disengagement():
    assert lf.meters_per_disengagement(120.0, 4) == 30.0
    assert lf.meters_per_disengagement(120.0, 0) == 120.0


def test_render_shows_view_map_and_disengagements():
    env = gym.make("LaneFollow-v0", mode="test", render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(60):
        obs, *_ = env.step(np.array([0.8, 0.5], np.float32))
    frame = env.render()
    assert frame.shape == (256, 512, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[::4, :256:4], obs["image"])  # the step's view, upscaled 4x
    assert env.unwrapped.disengagements > 0
    red = (frame[..., 0] > 200) & (frame[..., 1] < 80) & (frame[..., 2] < 80)
    assert red[:, 256:].sum() >= 25
    quiet = gym.make("LaneFollow-v0")
    quiet.reset(seed=0)
    assert quiet.render() is None


def test_the_state_observation_is_the_pose_on_the_road():
    radius, s, lateral, heading_error = 30.0, 12.0, 0.6, -0.1
    curvature = np.full(int(60.0 / lf.ROAD_SPACING), 1.0 / radius)
    curvature[int(20.0 / lf.ROAD_SPACING) :] = 0.0  # a left bend, then straight from 20 m
    road = lf.road_from_curvature(curvature, **PAINT)
    env = gym.make(lf.STATE_ENV_ID).unwrapped
    env.reset(seed=0, options={"road": road})
    obs = env.set_pose(*lf.pose_on_road(road, s, lateral, heading_error), speed=2.0, steering=-0.5)
    assert env.observation_space.contains(obs)
    expected = [2 * lateral / PAINT["width"], heading_error, 2.0 / lf.V_MAX, -0.5, 10 / radius, 10 / radius, 0.0]
    np.testing.assert_allclose(obs, expected, atol=2e-3)


def test_the_state_env_drives_exactly_like_the_camera_env():
    pixels, state = gym.make("LaneFollow-v0"), gym.make(lf.STATE_ENV_ID, render_mode="rgb_array")
    pixels.reset(seed=4)
    state.reset(seed=4)
    actions = np.random.default_rng(0).uniform(-1, 1, (80, 2)).astype(np.float32)
    for action in actions:
        with_camera, without = pixels.step(action), state.step(action)
        assert with_camera[1:] == without[1:]  # reward, terminated, truncated, info
        if with_camera[2]:
            break
    assert with_camera[2]  # the random actions left the lane
    assert state.render().shape == (256, 512, 3)


def test_an_unknown_observation_kind_is_refused():
    with pytest.raises(ValueError, match="observation must be one of"):
        gym.make("LaneFollow-v0", observation="lidar")


def mirror_of(spec, obs, action):
    """obs and action mirrored as the learner mirrors them (learner.mirror_where with the spec's parsed mirror)."""
    flags = np.ones((1, 1), bool)

    def one(x, signs):
        return np.asarray(mirror_where(flags, jnp.asarray(x)[None, None], signs)[0, 0])

    names = dict(spec.mirror_inputs)
    mirrored = {k: one(v, names[k]) for k, v in obs.items()} if isinstance(obs, dict) else one(obs, names["obs"])
    return mirrored, one(action, spec.mirror_action)


@pytest.mark.parametrize(
    "env_id, entries", [("LaneFollow-v0", lf.CAMERA_MIRROR), (lf.STATE_ENV_ID, lf.STATE_MIRROR)]
)
def test_the_declared_mirror_is_the_env_on_the_mirrored_road(env_id, entries):
    curvature = np.concatenate([np.full(100, 1 / 40), np.full(100, -1 / 30), np.zeros(100)])
    roads = [lf.road_from_curvature(c, **PAINT) for c in (curvature, -curvature)]
    envs = [gym.make(env_id).unwrapped for _ in roads]
    spec = learner_spec(DDPGConfig(mirror=entries), 2, obs_spec(envs[0].observation_space))
    for env, road in zip(envs, roads, strict=True):
        env.reset(seed=0, options={"road": road})
    obs = [
        env.set_pose(*lf.pose_on_road(road, 6.0, sign * 0.4, sign * 0.1), speed=2.0, steering=sign * 0.3)
        for env, road, sign in zip(envs, roads, (1, -1), strict=True)
    ]
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 2)).astype(np.float32)
    for action in actions:
        expected, mirrored_action = mirror_of(spec, obs[0], action)
        for got, want in zip(jax.tree.leaves(obs[1]), jax.tree.leaves(expected), strict=True):
            atol = 1.0 if got.dtype == np.uint8 else 1e-4  # pixels may round the other way
            np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=atol, rtol=0)
        (obs[0], reward, done, *_), (obs[1], mirrored_reward, mirrored_done, *_) = (
            envs[0].step(action),
            envs[1].step(mirrored_action),
        )
        assert mirrored_reward == pytest.approx(reward, abs=1e-6) and mirrored_done == done
        if done:
            break
    assert envs[0].s > 5.0  # the car drove on
