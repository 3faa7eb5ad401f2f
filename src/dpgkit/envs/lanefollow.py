"""LaneFollow-v0: a procedural lane-following driving simulator (Kendall et al. 2018, "Learning to Drive in a
Day", in simulation); pure numpy.

The road is one drivable lane of width `width` around a centre line: solid edge lines whose outer edges are at
+-width/2, a centre line (solid or dashed) painted on the centre, and a shoulder of road surface beyond the edge
lines before the verge. The car "leaves the lane" when its reference point (the rear axle, where the camera
is) is more than width/2 from the centre line.

Sign conventions: the lateral offset is positive to the left of the centre line (looking along the direction of
travel); the heading error is the car's heading minus the road's, wrapped to [-pi, pi), positive when the car
points to the left of the road; steering is positive to the left.

Car: a kinematic bicycle model about the rear axle (wheelbase WHEELBASE, step DT); the steering angle is set
directly by the action (no steering rate), delta = MAX_STEER * a[0]; a[1] in [-1, 1] is a speed set-point
mapped linearly to [0, V_MAX]; a proportional controller (SPEED_GAIN) with |acceleration| <= ACCEL_LIMIT turns
it into the speed of the step, and the car then moves along the exact circular arc of curvature
tan(delta) / WHEELBASE for speed * DT metres, so a constant steering drives exactly on a circle.

Reward: the arc length along the centre line gained in the step. Train mode: leaving the lane, or stalling
(slower than STALL_SPEED for STALL_STEPS steps in a row), terminates;
driving max_distance metres along the centre truncates, and so does the step cap
ceil(max_distance / (STALL_FRACTION * V_MAX * DT)) (a car averaging under 10% of V_MAX is stopped). Test mode:
always the fixed test route; a safety driver puts a car that left the lane back on the centre line at its
current arc length, heading along the road, speed kept, and counts a disengagement (a stalled car: the same, at
INITIAL_SPEED); truncated after
TEST_ROUTE_LENGTH metres (or the step cap for that length). safety_driver=True puts the same safety driver in
train mode (training roads driven to max_distance whatever the policy does: frames from all of each road, for
pretraining an encoder); safety_driver=False takes it out of test mode.

LaneFollowState-v0 is the same env with observation="state": instead of the camera, the privileged lane_state
vector (lateral offset, heading error, speed, steering, curvature ahead), to tell perception from control apart.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import ClassVar

import gymnasium as gym
import numpy as np

ENV_ID = "LaneFollow-v0"
STATE_ENV_ID = "LaneFollowState-v0"
WHEELBASE = 2.5
DT = 0.1
MAX_STEER = 0.7
V_MAX = 5.0
SPEED_GAIN = 2.0
ACCEL_LIMIT = 3.0
INITIAL_SPEED = 1.0
OBSERVATIONS = ("pixels", "state")
STATE_LOOKAHEAD = (0.0, 5.0, 10.0)
"""Metres ahead of the car at which the state observation gives the road's curvature."""
CAMERA_MIRROR = ("image=flip", "speed=1", "steering=-1", "action=-1,1")
"""config.mirror of LaneFollow-v0: the road, its markings and the camera are left-right symmetric, so the view of
the mirrored road at the mirrored pose is the view flipped (up to the texture noise), steering changes sign, speed
does not."""
STATE_MIRROR = ("obs=" + ",".join(["-1", "-1", "1", "-1"] + ["-1"] * len(STATE_LOOKAHEAD)), "action=-1,1")
"""config.mirror of LaneFollowState-v0: offset, heading error, steering and curvatures change sign, speed does not."""
STALL_FRACTION = 0.1
STALL_SPEED = 0.25
STALL_STEPS = 30
"""A car slower than STALL_SPEED m/s for STALL_STEPS steps in a row (3 s) has stalled: the safety driver takes
over, as when it leaves the lane."""

ROAD_SPACING = 0.25
ROAD_MARGIN = 80.0
# The road distribution and MAX_STEER were tuned with TEST_ROUTE_SEED fixed, so that on the test route the random
# policy makes 4-15 m and the zero policy 15-45 m per disengagement (benchmarks/lanefollow_calibration.py). MAX_STEER
# went from 0.5 to 0.7 rad there: the random policy's white-noise steering otherwise drifts too little.
SEGMENT_LENGTH = (15.0, 45.0)
CURVATURE_RANGE = (1.0 / 100.0, 1.0 / 28.0)
SEGMENT_KINDS = ("straight", "bend", "s-bend")
SEGMENT_WEIGHTS = (0.3, 0.45, 0.25)
TRANSITION_LENGTH = 4.0
FIRST_STRAIGHT = (5.0, 15.0)
LANE_WIDTH_RANGE = (2.6, 3.4)

TEST_ROUTE_SEED = 2018
"""The test route's seed, fixed before any calibration (the paper's year) and never changed while tuning the
road distribution. Train mode never builds a road from it: a train road seed equal to it is replaced by
train_road_seed's derived seed."""
TEST_ROUTE_LENGTH = 250.0

CAMERA_HEIGHT = 1.4
CAMERA_PITCH = 0.18
CAMERA_FOV = math.radians(90.0)
VIEW_DISTANCE = 50.0
FOG_DISTANCE = 45.0
TEXTURE_CELL = (0.5, 0.25)
TEXTURE_SHAPE = (128, 64)

MARKING_COLORS = {"white": (235, 235, 230), "yellow": (235, 195, 40), "cream": (225, 215, 170)}
VERGE_COLORS = {
    "grass": (70, 130, 50),
    "dry grass": (150, 140, 70),
    "sand": (190, 170, 120),
    "dirt": (120, 90, 60),
}


@dataclass(frozen=True, eq=False)
class Road:
    """A centre line sampled every `spacing` metres of arc length and the look of the road around it."""

    curvature: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    spacing: float = ROAD_SPACING
    width: float = 3.5
    marking: str = "solid"
    marking_color: tuple[float, float, float] = MARKING_COLORS["white"]
    marking_width: float = 0.15
    dash_period: float = 6.0
    dash_duty: float = 0.5
    shoulder: float = 0.3
    road_color: tuple[float, float, float] = (90.0, 90.0, 95.0)
    verge_color: tuple[float, float, float] = (60.0, 120.0, 50.0)
    sky_color: tuple[float, float, float] = (150.0, 190.0, 235.0)
    light: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    texture: np.ndarray = field(default_factory=lambda: np.zeros(TEXTURE_SHAPE, np.float32))
    road_texture: float = 0.0
    verge_texture: float = 0.0
    stripe_period: float = 2.0
    stripe_amp: float = 0.0

    @functools.cached_property
    def arc_lengths(self) -> np.ndarray:
        """Arc length in metres of every centre-line sample (computed once per road)."""
        return np.arange(len(self.x)) * self.spacing

    @property
    def length(self) -> float:
        """Arc length of the sampled centre line in metres."""
        return (len(self.x) - 1) * self.spacing


def wrap_angle(angle: float) -> float:
    """angle wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def centre_line(curvature: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, heading) of the curve from the origin heading along +x with the given curvature per sample."""
    heading = np.concatenate([[0.0], np.cumsum(curvature[:-1] * spacing)])
    mid = 0.5 * (heading[:-1] + heading[1:])
    x = np.concatenate([[0.0], np.cumsum(spacing * np.cos(mid))])
    y = np.concatenate([[0.0], np.cumsum(spacing * np.sin(mid))])
    return x, y, heading


def road_from_curvature(curvature: np.ndarray, spacing: float = ROAD_SPACING, **appearance) -> Road:
    """A road whose centre line has the given curvature (1/m) per arc-length sample; appearance: Road fields."""
    curvature = np.asarray(curvature, np.float64)
    x, y, heading = centre_line(curvature, spacing)
    return Road(curvature=curvature, x=x, y=y, heading=heading, spacing=spacing, **appearance)


def segment_curvature(rng: np.random.Generator, kind: str, samples: int) -> np.ndarray:
    """Curvature samples of one segment: zero (straight), constant (bend) or two opposite halves (S-bend)."""
    if kind == "straight":
        return np.zeros(samples)
    k = rng.uniform(*CURVATURE_RANGE) * rng.choice((-1.0, 1.0))
    if kind == "bend":
        return np.full(samples, k)
    half = samples // 2
    return np.concatenate([np.full(half, k), np.full(samples - half, -k)])


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average over window samples, edges padded with the end values (length kept)."""
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, np.full(window, 1.0 / window), mode="valid")


def random_curvature(rng: np.random.Generator, length: float, spacing: float = ROAD_SPACING) -> np.ndarray:
    """A curvature profile of at least length metres: a short straight, then random segments, ramped."""
    count = math.ceil(length / spacing) + 1
    parts = [np.zeros(int(rng.uniform(*FIRST_STRAIGHT) / spacing))]
    total = len(parts[0])
    while total < count:
        kind = SEGMENT_KINDS[rng.choice(len(SEGMENT_KINDS), p=SEGMENT_WEIGHTS)]
        parts.append(segment_curvature(rng, kind, int(rng.uniform(*SEGMENT_LENGTH) / spacing)))
        total += len(parts[-1])
    return smooth(np.concatenate(parts)[:count], int(TRANSITION_LENGTH / spacing))


def random_appearance(rng: np.random.Generator) -> dict:
    """Road fields for the look of a road: lane width, markings, colours, textures and lighting."""
    road_color = rng.uniform(55.0, 135.0) + rng.uniform(-10.0, 10.0, 3)
    verge_color = np.asarray(VERGE_COLORS[rng.choice(list(VERGE_COLORS))]) * rng.uniform(0.7, 1.2, 3)
    return {
        "width": float(rng.uniform(*LANE_WIDTH_RANGE)),
        "marking": "dashed" if rng.random() < 0.5 else "solid",
        "marking_color": MARKING_COLORS[rng.choice(list(MARKING_COLORS))],
        "marking_width": float(rng.uniform(0.12, 0.22)),
        "dash_period": float(rng.uniform(3.0, 9.0)),
        "dash_duty": float(rng.uniform(0.3, 0.6)),
        "shoulder": float(rng.uniform(0.0, 0.6)),
        "road_color": tuple(float(c) for c in road_color),
        "verge_color": tuple(float(c) for c in verge_color),
        "sky_color": (
            float(rng.uniform(110, 200)),
            float(rng.uniform(150, 210)),
            float(rng.uniform(200, 250)),
        ),
        "light": float(rng.uniform(0.6, 1.3)),
        "tint": tuple(float(t) for t in rng.uniform(0.85, 1.15, 3)),
        "texture": rng.uniform(-1.0, 1.0, TEXTURE_SHAPE).astype(np.float32),
        "road_texture": float(rng.uniform(0.0, 0.15)),
        "verge_texture": float(rng.uniform(0.05, 0.3)),
        "stripe_period": float(rng.uniform(1.0, 4.0)),
        "stripe_amp": float(rng.uniform(0.0, 0.15)),
    }


def generate_road(seed: int, length: float) -> Road:
    """The random road of a seed, at least length metres long (plus the look-ahead margin)."""
    rng = np.random.default_rng(seed)
    curvature = random_curvature(rng, length + ROAD_MARGIN)
    return road_from_curvature(curvature, **random_appearance(rng))


def train_road_seed(seed: int) -> int:
    """seed itself, or a seed derived from it when it is TEST_ROUTE_SEED (train roads never use that seed)."""
    derived = int(seed)
    while derived == TEST_ROUTE_SEED:
        derived = int(np.random.SeedSequence([derived, 1]).generate_state(1)[0])
    return derived


def build_test_route() -> Road:
    """The fixed test route: the road of TEST_ROUTE_SEED, TEST_ROUTE_LENGTH metres (plus margin)."""
    return generate_road(TEST_ROUTE_SEED, TEST_ROUTE_LENGTH)


def project(
    road: Road, x: float, y: float, heading: float, hint: int | None = None, window: int = 40
) -> tuple[float, float, float, int]:
    """(s, lateral offset, heading error, segment index) of a pose on the centre line, searching segments
    within window samples of hint (the whole road when hint is None)."""
    last = len(road.x) - 1
    lo, hi = (0, last) if hint is None else (max(hint - window, 0), min(hint + window, last))
    xs, ys = road.x[lo : hi + 1], road.y[lo : hi + 1]
    ex, ey = np.diff(xs), np.diff(ys)
    t = np.clip(((x - xs[:-1]) * ex + (y - ys[:-1]) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    dx, dy = x - (xs[:-1] + t * ex), y - (ys[:-1] + t * ey)
    j = int(np.argmin(dx * dx + dy * dy))
    tj, norm = float(t[j]), math.hypot(ex[j], ey[j])
    lateral = (ex[j] * dy[j] - ey[j] * dx[j]) / norm
    road_heading = road.heading[lo + j] + tj * (road.heading[lo + j + 1] - road.heading[lo + j])
    return (lo + j + tj) * road.spacing, float(lateral), wrap_angle(heading - road_heading), lo + j


def pose_on_road(road: Road, s: float, lateral: float = 0.0, heading_error: float = 0.0):
    """(x, y, heading) of the pose at arc length s, lateral offset and heading error from the centre line."""
    samples = road.arc_lengths
    cx, cy, h = (float(np.interp(s, samples, v)) for v in (road.x, road.y, road.heading))
    return cx - lateral * math.sin(h), cy + lateral * math.cos(h), h + heading_error


def speed_of_action(action: float) -> float:
    """The speed set-point in [0, V_MAX] of an action component in [-1, 1]."""
    return 0.5 * (float(action) + 1.0) * V_MAX


def next_speed(speed: float, target: float) -> float:
    """The speed after one step of the bounded proportional controller towards target."""
    accel = min(max(SPEED_GAIN * (target - speed), -ACCEL_LIMIT), ACCEL_LIMIT)
    return min(max(speed + accel * DT, 0.0), V_MAX)


def bicycle_step(x: float, y: float, heading: float, speed: float, steer: float):
    """(x, y, heading) after driving speed * DT metres on the arc of the rear-axle bicycle with angle steer."""
    distance, curvature = speed * DT, math.tan(steer) / WHEELBASE
    if abs(curvature * distance) < 1e-9:
        return x + distance * math.cos(heading), y + distance * math.sin(heading), heading
    turned = heading + curvature * distance
    x += (math.sin(turned) - math.sin(heading)) / curvature
    y -= (math.cos(turned) - math.cos(heading)) / curvature
    return x, y, turned


def lane_state(road: Road, s: float, lateral: float, heading_error: float, speed: float, steering: float):
    """The privileged state: lateral offset / (width / 2), heading error (rad), speed / V_MAX, steering
    fraction, and the centre line's curvature in 1/(10 m) at STATE_LOOKAHEAD metres ahead."""
    samples = road.arc_lengths
    ahead = np.interp(s + np.asarray(STATE_LOOKAHEAD), samples, road.curvature) * 10.0
    return np.array([2.0 * lateral / road.width, heading_error, speed / V_MAX, steering, *ahead], np.float32)


def meters_per_disengagement(distance: float, disengagements: int) -> float:
    """distance / disengagements, and the whole distance when there were none (as if one came at the end)."""
    return float(distance) / disengagements if disengagements > 0 else float(distance)


def step_cap(length: float) -> int:
    """The step limit for driving length metres: a car averaging under STALL_FRACTION * V_MAX runs out."""
    return math.ceil(length / (STALL_FRACTION * V_MAX * DT))


@dataclass(frozen=True, eq=False)
class Camera:
    """Per-row constants of the pitched pinhole driver camera: the ground rows see fixed depths ahead."""

    size: int
    ground_rows: np.ndarray
    depth: np.ndarray
    depth_step: np.ndarray
    lateral: np.ndarray
    half_pixel: np.ndarray
    fog: np.ndarray
    horizon: float


def make_camera(size: int) -> Camera:
    """The camera of a size x size image: height CAMERA_HEIGHT, pitched down CAMERA_PITCH, CAMERA_FOV wide."""
    focal = 0.5 * size / math.tan(0.5 * CAMERA_FOV)
    yn = (np.arange(size) + 0.5 - 0.5 * size) / focal
    xn = (np.arange(size) + 0.5 - 0.5 * size) / focal
    down = math.sin(CAMERA_PITCH) + yn * math.cos(CAMERA_PITCH)
    with np.errstate(divide="ignore"):
        ray = np.where(down > 0, CAMERA_HEIGHT / np.where(down > 0, down, 1.0), np.inf)
        depth = ray * (math.cos(CAMERA_PITCH) - yn * math.sin(CAMERA_PITCH))
    rows = np.flatnonzero(depth < VIEW_DISTANCE)
    step = np.abs(np.gradient(depth[rows])) if len(rows) > 1 else np.ones(len(rows))
    return Camera(
        size=size,
        ground_rows=rows,
        depth=depth[rows],
        depth_step=step,
        lateral=(-ray[rows, None] * xn[None, :]).astype(np.float32),
        half_pixel=(0.5 * ray[rows] / focal).astype(np.float32),
        fog=(1.0 - np.exp(-depth[rows] / FOG_DISTANCE)).astype(np.float32),
        horizon=0.5 * size - focal * math.tan(CAMERA_PITCH),
    )


def lit(road: Road, color) -> np.ndarray:
    """A colour under the road's lighting (brightness times tint), float32."""
    return np.asarray(color, np.float32) * np.float32(road.light) * np.asarray(road.tint, np.float32)


def fog_color(road: Road) -> np.ndarray:
    """The lit colour of the far distance: a pale mix of sky and white."""
    return lit(road, 0.6 * np.asarray(road.sky_color) + 0.4 * np.array([220.0, 220.0, 220.0]))


@dataclass(frozen=True, eq=False)
class Paint:
    """A road's look precomputed for the renderer: sky image, lit colours and texture shading tables."""

    sky: np.ndarray
    colors: np.ndarray
    road_shade: np.ndarray
    verge_shade: np.ndarray


def sky_image(road: Road, camera: Camera) -> np.ndarray:
    """The (size, size, 3) uint8 image of sky above the horizon and fog below, before the ground is drawn."""
    rows = np.arange(camera.size) + 0.5
    up = np.clip((camera.horizon - rows) / max(camera.horizon, 1.0), 0.0, 1.0)[:, None]
    sky = fog_color(road) * (1.0 - up) + lit(road, road.sky_color) * up
    return np.broadcast_to(
        np.clip(sky, 0, 255).astype(np.uint8)[:, None, :], (camera.size, camera.size, 3)
    ).copy()


def paint_road(road: Road, camera: Camera) -> Paint:
    """The Paint of a road: colours (verge, road, marking, fog) as rows, shades of noise and verge stripes."""
    lateral = (np.arange(road.texture.shape[1]) + 0.5) * TEXTURE_CELL[1]
    stripes = road.stripe_amp * np.sign(np.sin(lateral * (2.0 * math.pi / road.stripe_period)))
    colors = [lit(road, c) for c in (road.verge_color, road.road_color, road.marking_color)] + [
        fog_color(road)
    ]
    return Paint(
        sky=sky_image(road, camera),
        colors=np.stack(colors).astype(np.float32),
        road_shade=(1.0 + road.road_texture * road.texture).astype(np.float32),
        verge_shade=(1.0 + road.verge_texture * road.texture + stripes).astype(np.float32),
    )


def band_overlap(a: np.ndarray, half_pixel: np.ndarray, centre: float, half_band: float) -> np.ndarray:
    """Fraction of each pixel [a - p, a + p] covered by [centre - half_band, centre + half_band]."""
    covered = np.minimum(a + half_pixel, centre + half_band) - np.maximum(a - half_pixel, centre - half_band)
    return np.clip(covered / (2.0 * half_pixel), 0.0, 1.0)


def dash_cover(road: Road, s: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Fraction of [s - step/2, s + step/2] painted by the dashes (1 for a solid marking)."""
    if road.marking == "solid":
        return np.ones_like(s)
    period, on = road.dash_period, road.dash_duty * road.dash_period

    def painted(u):
        return np.floor(u / period) * on + np.minimum(np.mod(u, period), on)

    half = 0.5 * np.maximum(step, 1e-3)
    return (painted(s + half) - painted(s - half)) / (2.0 * half)


def centre_ahead(road: Road, camera: Camera, x: float, y: float, heading: float, index: int):
    """Per ground row: (lateral position of the centre in the car frame, cos of the road's angle to the car,
    arc length), from the centre line ahead; rows past where the road stops advancing get no road."""
    end = min(index + int(1.2 * VIEW_DISTANCE / road.spacing), len(road.x) - 1)
    start = max(index - 2, 0)
    c, s = math.cos(heading), math.sin(heading)
    dx, dy = road.x[start : end + 1] - x, road.y[start : end + 1] - y
    forward = np.maximum.accumulate(c * dx + s * dy)
    left = -s * dx + c * dy
    angle = np.cos(road.heading[start : end + 1] - heading)
    arc = np.arange(start, end + 1) * road.spacing
    centre = np.interp(camera.depth, forward, left)
    centre = np.where(camera.depth <= forward[-1], centre, 1e6)
    cos_angle = np.maximum(np.interp(camera.depth, forward, angle), 0.05)
    return centre.astype(np.float32), cos_angle.astype(np.float32), np.interp(camera.depth, forward, arc)


def driver_view(road: Road, camera: Camera, paint: Paint, x: float, y: float, heading: float, index: int):
    """The (size, size, 3) uint8 forward view of a car at (x, y, heading) near centre-line sample index."""
    centre, cos_angle, arc = centre_ahead(road, camera, x, y, heading, index)
    offset = (camera.lateral - centre[:, None]) * cos_angle[:, None]
    a = np.abs(offset)
    p = (camera.half_pixel * cos_angle)[:, None]
    half_width, m = 0.5 * road.width, 0.5 * road.marking_width
    surface = band_overlap(a, p, 0.0, half_width + road.shoulder)
    dashes = dash_cover(road, arc, camera.depth_step).astype(np.float32)[:, None]
    lines = np.minimum(band_overlap(a, p, half_width - m, m) + band_overlap(a, p, 0.0, m) * dashes, 1.0)
    rows, cols = road.texture.shape
    cell = (
        (arc // TEXTURE_CELL[0]).astype(np.intp)[:, None] % rows,
        (offset // TEXTURE_CELL[1]).astype(np.intp) % cols,
    )
    clear = (1.0 - camera.fog)[:, None] * (1.0 - lines)
    weights = np.stack(
        [
            clear * (1.0 - surface) * paint.verge_shade[cell],
            clear * surface * paint.road_shade[cell],
            (1.0 - camera.fog)[:, None] * lines,
            np.broadcast_to(camera.fog[:, None], a.shape),
        ],
        -1,
    )
    image = paint.sky.copy()
    image[camera.ground_rows] = np.clip(weights @ paint.colors, 0.0, 255.0).astype(np.uint8)
    return image


def top_down(road: Road, path: np.ndarray, disengaged: np.ndarray, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 map of the whole road (grey) with the car's path (green), its disengagement
    points (red) and the car (yellow)."""
    lo = np.array([road.x.min(), road.y.min()])
    span = max(road.x.max() - lo[0], road.y.max() - lo[1], 1.0)
    scale = (size - 12) / span

    def pixels(points):
        col = np.rint((points[:, 0] - lo[0]) * scale + 6).astype(int)
        row = np.rint(size - 7 - (points[:, 1] - lo[1]) * scale).astype(int)
        return np.clip(row, 0, size - 1), np.clip(col, 0, size - 1)

    def mark(image, points, color, radius):
        if len(points) == 0:
            return
        row, col = pixels(points)
        for dr in range(-radius, radius + 1):
            for dc in range(-radius, radius + 1):
                image[np.clip(row + dr, 0, size - 1), np.clip(col + dc, 0, size - 1)] = color

    image = np.full((size, size, 3), 30, np.uint8)
    mark(image, np.stack([road.x, road.y], 1), (120, 120, 120), max(1, int(0.5 * road.width * scale)))
    mark(image, path, (60, 220, 60), 0)
    mark(image, disengaged, (240, 40, 40), 2)
    mark(image, path[-1:], (250, 230, 40), 2)
    return image


class LaneFollowEnv(gym.Env):
    """Keep a car in its lane on a procedural road, seen through a forward camera (see the module docstring).

    observation="pixels" (the paper's): a Dict of the driver view, speed and steering; observation="state": the
    privileged lane_state vector instead (no camera; for telling perception from control apart).
    reset(options={"road": road}) drives the given Road instead of a generated one (scripted runs and tests);
    set_pose puts the car anywhere.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        image_size: int = 64,
        mode: str = "train",
        max_distance: float = 500.0,
        render_mode: str | None = None,
        observation: str = "pixels",
        safety_driver: bool | None = None,
    ):
        if mode not in ("train", "test") or image_size < 8 or not max_distance > 0:
            raise ValueError(
                f"LaneFollowEnv: need mode 'train' or 'test', image_size >= 8 and max_distance > 0, got {mode!r}, "
                f"{image_size}, {max_distance}"
            )
        if observation not in OBSERVATIONS:
            raise ValueError(f"LaneFollowEnv: observation must be one of {OBSERVATIONS}, got {observation!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"LaneFollowEnv: render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.image_size, self.mode, self.render_mode = image_size, mode, render_mode
        self.observation_kind = observation
        self.safety_driver = mode == "test" if safety_driver is None else bool(safety_driver)
        self.route_length = TEST_ROUTE_LENGTH if mode == "test" else float(max_distance)
        self.max_steps = step_cap(self.route_length)
        self.camera = make_camera(image_size)
        self.observation_space = (
            gym.spaces.Box(-np.inf, np.inf, (4 + len(STATE_LOOKAHEAD),), np.float32)
            if observation == "state"
            else gym.spaces.Dict(
                {
                    "image": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                    "speed": gym.spaces.Box(0.0, V_MAX, (1,), np.float32),
                    "steering": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
                }
            )
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.road: Road | None = None
        self.paint: Paint | None = None
        self.view: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and "road" in options:
            self.road = options["road"]
        elif self.mode == "test":
            self.road = build_test_route()
        else:
            road_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
            self.road = generate_road(train_road_seed(road_seed), self.route_length)
        self.paint = paint_road(self.road, self.camera)
        self.steps, self.disengagements, self.slow_steps = 0, 0, 0
        self.path, self.disengaged = [], []
        self.place_car(*pose_on_road(self.road, 0.0), speed=INITIAL_SPEED, steering=0.0)
        return self.observation(), self.info()

    def set_pose(
        self, x: float, y: float, heading: float, speed: float | None = None, steering: float | None = None
    ):
        """Put the car at (x, y, heading) (speed and steering fraction kept when None); returns the observation."""
        self.place_car(x, y, heading, speed, steering)
        return self.observation()

    def place_car(
        self, x: float, y: float, heading: float, speed: float | None = None, steering: float | None = None
    ) -> None:
        """Put the car at (x, y, heading), speed and steering fraction kept when None, and project it."""
        self.x, self.y, self.heading = float(x), float(y), float(heading)
        self.speed = self.speed if speed is None else float(speed)
        self.steering = self.steering if steering is None else float(steering)
        self.s, self.lateral, self.heading_error, self.index = project(
            self.road, self.x, self.y, self.heading
        )
        self.path.append((self.x, self.y))

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self.steering = float(action[0])
        self.speed = next_speed(self.speed, speed_of_action(action[1]))
        self.x, self.y, self.heading = bicycle_step(
            self.x, self.y, self.heading, self.speed, MAX_STEER * self.steering
        )
        before = self.s
        self.s, self.lateral, self.heading_error, self.index = project(
            self.road, self.x, self.y, self.heading, self.index
        )
        self.steps += 1
        self.path.append((self.x, self.y))
        self.slow_steps = self.slow_steps + 1 if self.speed < STALL_SPEED else 0
        stalled = self.slow_steps >= STALL_STEPS
        left_lane = abs(self.lateral) > 0.5 * self.road.width
        if (left_lane or stalled) and self.safety_driver:
            self.disengage()
            self.speed = INITIAL_SPEED if stalled else self.speed
        terminated = (left_lane or stalled) and not self.safety_driver
        truncated = not terminated and (self.s >= self.route_length or self.steps >= self.max_steps)
        return self.observation(), self.s - before, terminated, truncated, self.info()

    def disengage(self) -> None:
        """The safety driver: count a disengagement and put the car on the centre line, heading along the road."""
        self.disengagements += 1
        self.slow_steps = 0
        self.disengaged.append((self.x, self.y))
        self.x, self.y, self.heading = pose_on_road(self.road, self.s)
        self.s, self.lateral, self.heading_error, self.index = project(
            self.road, self.x, self.y, self.heading, self.index
        )

    def observation(self) -> dict | np.ndarray:
        """The driver view (kept for render), measured speed and steering fraction; or the lane_state."""
        if self.observation_kind == "state":
            self.view = None
            return lane_state(self.road, self.s, self.lateral, self.heading_error, self.speed, self.steering)
        self.view = self.driver_view()
        return {
            "image": self.view,
            "speed": np.array([self.speed], np.float32),
            "steering": np.array([self.steering], np.float32),
        }

    def driver_view(self) -> np.ndarray:
        """The forward camera's image of the current pose."""
        return driver_view(self.road, self.camera, self.paint, self.x, self.y, self.heading, self.index)

    def info(self) -> dict:
        """Metres driven along the centre, disengagements and the lane errors of the current pose."""
        return {
            "distance": self.s,
            "disengagements": self.disengagements,
            "lateral_offset": self.lateral,
            "heading_error": self.heading_error,
        }

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        from PIL import Image, ImageDraw

        nearest = np.arange(256) * self.image_size // 256
        view = (self.driver_view() if self.view is None else self.view)[nearest][:, nearest]
        road_map = top_down(self.road, np.array(self.path), np.array(self.disengaged).reshape(-1, 2), 256)
        frame = Image.fromarray(np.concatenate([view, road_map], 1))
        draw = ImageDraw.Draw(frame)
        draw.text((262, 4), f"{self.s:.1f} m  {self.disengagements} disengagements", fill=(255, 255, 255))
        draw.text(
            (262, 16),
            f"{meters_per_disengagement(self.s, self.disengagements):.1f} m per disengagement",
            fill=(255, 255, 255),
        )
        return np.asarray(frame)


def register_lanefollow() -> None:
    """Register LaneFollow-v0 and LaneFollowState-v0 (observation="state") with Gymnasium, without a TimeLimit
    (the env truncates itself; idempotent)."""
    for env_id, kwargs in ((ENV_ID, {}), (STATE_ENV_ID, {"observation": "state"})):
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="dpgkit.envs.lanefollow:LaneFollowEnv",
                max_episode_steps=None,
                kwargs=kwargs,
            )
