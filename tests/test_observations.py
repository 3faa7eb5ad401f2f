"""Any observation: pixels, Dict and N-D Box observations through replay, acting, evaluation, checkpoints and
resume; networks built from torsos joined at chosen depths; frozen and shared encoders; augmentation."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit import DDPG, DPG, TD3
from dpgkit.config import TD3Config
from dpgkit.driver import learner_spec
from dpgkit.envs import obs_spec
from dpgkit.envs.wrappers import split_env
from dpgkit.explore.param import perturb
from dpgkit.learn import Batch, init_learner, update_block
from dpgkit.learn.learner import actor_step, critic_step, random_shift
from dpgkit.nets.spec import read_encoder, save_encoder

PIXELS, DICT, NESTED, MATRIX = (
    "dpgkit/PixelDot-v0",
    "dpgkit/DictProbe-v0",
    "dpgkit/DictProbeNested-v0",
    "dpgkit/MatrixProbe-v0",
)
SMALL = {
    "learning_starts": 64,
    "batch_size": 16,
    "hidden": (16, 16),
    "cnn": "4-3-2,4-3-1",
    "eval_every": 0,
    "progress": False,
}


def make(algo, env, run_dir, **extra):
    return algo(env, seed=1, run_dir=str(run_dir), total_steps=400, **{**SMALL, **extra})


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_trees_equal(a, b) -> None:
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for i, (u, v) in enumerate(zip(la, lb, strict=True)):
        assert u.dtype == v.dtype and u.shape == v.shape, i
        assert np.array_equal(u, v), f"leaf {i} differs"


def one_observation(env_id: str, seed: int = 0):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    env.close()
    return obs


@pytest.mark.parametrize("env_id", [PIXELS, DICT, NESTED, MATRIX])
def test_every_observation_kind_learns_acts_evaluates_and_reloads(tmp_path, env_id):
    agent = make(TD3, env_id, tmp_path / "run").learn(200)
    obs = one_observation(env_id)
    action = agent.act(obs)
    assert action.shape == (agent.trainer.env_actor.action_shape[1],)
    batch = jax.tree_util.tree_map(lambda x: np.stack([x, x, x]), obs)
    np.testing.assert_allclose(agent.act(batch), np.stack([action] * 3), rtol=1e-6, atol=1e-6)
    returns = agent.evaluate(episodes=2)
    assert returns.shape == (2,) and np.isfinite(returns).all()
    loaded = TD3.load(agent.save())
    np.testing.assert_array_equal(loaded.act(obs), action)


def test_pixels_stay_uint8_in_the_replay_and_the_checkpoint(tmp_path):
    from dpgkit.checkpoint import load_checkpoint

    agent = make(TD3, PIXELS, tmp_path / "run").learn(100)
    driver = agent.trainer.driver
    assert driver.replay.storage.obs.dtype == np.int32 == driver.replay.storage.next_obs.dtype  # frame ids
    assert driver.frames.stores[""].frames.dtype == np.uint8
    arrays, _ = load_checkpoint(agent.save())
    image_leaves = [v for v in arrays["replay"].values() if v.ndim >= 4]
    assert image_leaves and all(v.dtype == np.uint8 for v in image_leaves)


@pytest.mark.parametrize("env_id", [PIXELS, NESTED])
def test_resume_is_bitwise_exact_for_pixel_and_dict_observations(tmp_path, env_id):
    straight = make(TD3, env_id, tmp_path / "a").learn(400)
    first_half = make(TD3, env_id, tmp_path / "b").learn(200)
    resumed = TD3.load(first_half.save(tmp_path / "ckpt"))
    resumed.learn(200)
    assert_trees_equal(resumed.trainer.state, straight.trainer.state)
    assert_trees_equal(resumed.trainer.driver.replay.storage, straight.trainer.driver.replay.storage)


@pytest.mark.parametrize("explore", ["gaussian", "ou", "param", "noisy"])
def test_every_exploration_mode_runs_on_pixels(tmp_path, explore):
    agent = make(DDPG, PIXELS, tmp_path / "run", explore=explore, param_adapt_every=20).learn(150)
    assert agent.steps == 150 and agent.trainer.updates > 0
    assert all(np.isfinite(x).all() for x in leaves(agent.trainer.state.actor))


def test_seeds_train_side_by_side_on_a_dict_observation(tmp_path):
    agent = make(TD3, NESTED, tmp_path / "run", seeds=2).learn(150)
    actor = agent.trainer.state.actor
    first = jax.tree_util.tree_leaves(actor)[0]
    assert first.shape[0] == 2 and not np.array_equal(first[0], first[1])
    assert agent.evaluate(episodes=2).shape == (2, 2)


def test_a_frame_stack_reaches_the_network_in_its_channels(tmp_path):
    agent = make(TD3, PIXELS, tmp_path / "run", frame_stack=3).learn(100)
    assert agent.observation_spec.shape == (3, 16, 16, 1)
    kernel = agent.trainer.state.actor["encoder"]["params"]["cnn_0"]["PatchConv_0"]["kernel"]
    assert kernel.shape[-2] == 3  # three stacked one-channel frames in the first convolution's input
    assert agent.act(np.zeros((3, 16, 16, 1), np.uint8)).shape == (2,)


def test_a_wrong_observation_structure_is_named(tmp_path):
    agent = make(TD3, DICT, tmp_path / "run")
    with pytest.raises(ValueError, match=r"entries \['a', 'b'\]"):
        agent.act({"a": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="shape"):
        agent.act({"a": np.zeros(3, np.float32), "b": np.zeros(3, np.float32)})


def test_dpg_refuses_a_dict_observation_with_the_reason(tmp_path):
    with pytest.raises(TypeError, match="flat 1-D Box"):
        DPG(DICT, run_dir=str(tmp_path), progress=False)


def test_a_replay_larger_than_the_machine_is_refused_naming_buffer_size(tmp_path):
    with pytest.raises(ValueError, match=r"buffer_size 1000000000.*GiB"):
        TD3(PIXELS, run_dir=str(tmp_path), buffer_size=10**9, cnn="4-3-2", progress=False)


# ---- networks ----

BIPEDAL = obs_spec(split_env("BipedalWalker-v3").observation_space)


def spec_for(obs, **fields):
    return learner_spec(TD3Config(hidden=(16, 16), cnn="8-3-2").replace(**fields), 4, obs)


def example(obs, batch: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)

    def leaf(s):
        if s.dtype == np.uint8:
            return jnp.asarray(rng.integers(0, 256, (batch,) + s.shape), jnp.uint8)
        return jnp.asarray(rng.normal(size=(batch,) + s.shape), jnp.float32)

    return jax.tree_util.tree_map(leaf, obs)


def test_an_input_joining_at_layer_one_does_not_reach_layer_zero():
    spec = spec_for(BIPEDAL, torsos=("terrain=identity@1",))
    params = spec.actor.init(jax.random.PRNGKey(0), example(BIPEDAL))
    assert params["params"]["Dense_0"]["kernel"].shape == (14, 16)
    assert params["params"]["Dense_1"]["kernel"].shape == (16 + 10, 16)
    obs = example(BIPEDAL)
    changed = {**obs, "terrain": obs["terrain"] + 5.0}

    def layer_zero(o):
        _, state = spec.actor.head.apply(params, o, capture_intermediates=True, mutable=["intermediates"])
        return np.asarray(state["intermediates"]["Dense_0"]["__call__"][0])

    np.testing.assert_array_equal(layer_zero(obs), layer_zero(changed))
    assert not np.allclose(spec.actor.apply(params, obs), spec.actor.apply(params, changed))


def test_gradients_reach_every_torso_of_early_and_late_fusion():
    obs = example(BIPEDAL)
    for spec in (spec_for(BIPEDAL), spec_for(BIPEDAL, network="parkour")):
        params = spec.critic.init(jax.random.PRNGKey(0), obs, jnp.zeros((3, 4)))
        grads = jax.grad(lambda p, s=spec: jnp.sum(s.critic.apply(p, obs, jnp.ones((3, 4)))))(params)
        for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
            if jax.tree_util.keystr(path).endswith("['kernel']"):
                assert np.abs(np.asarray(g)).sum() > 0, jax.tree_util.keystr(path)
        assert ("mlp_1" in params["params"]) == (spec.inputs[1].torso.kind == "mlp")


def test_parkour_keeps_the_parameter_count_of_early_fusion_within_ten_percent():
    def count(spec):
        obs = example(BIPEDAL)
        actor = spec.actor.init(jax.random.PRNGKey(0), obs)
        critic = spec.critic.init(jax.random.PRNGKey(1), obs, jnp.zeros((3, 4)))
        return sum(x.size for x in leaves(actor)), sum(x.size for x in leaves(critic))

    early = count(learner_spec(TD3Config(), 4, BIPEDAL))
    parkour = count(learner_spec(TD3Config(network="parkour"), 4, BIPEDAL))
    for e, p in zip(early, parkour, strict=True):
        assert abs(p / e - 1) <= 0.10, (e, p)
    spec = learner_spec(TD3Config(network="parkour"), 4, BIPEDAL)
    assert {s.name: s.join for s in spec.inputs} == {"proprioception": 0, "terrain": 1}


def test_parkour_needs_the_two_named_inputs():
    with pytest.raises(ValueError, match="proprioception"):
        spec_for(obs_spec(gym.spaces.Box(-1.0, 1.0, (24,))), network="parkour")


def test_bad_torso_entries_are_named():
    for entry, fragment in [
        ("nothere=identity", "names no observation input"),
        ("terrain=mlp:0", "positive layer sizes"),
        ("terrain=cnn:nature", "a CNN takes images"),
        ("terrain=identity@5", "layers 0..1"),
        ("terrain", "name=torso"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            spec_for(BIPEDAL, torsos=(entry,))


IMAGE = obs_spec(gym.spaces.Box(0, 255, (16, 16, 3), np.uint8))


def batch_of(obs, seed: int = 0, batch: int = 3):
    rng = np.random.default_rng(seed + 100)
    return Batch(
        obs=example(obs, batch, seed),
        action=jnp.asarray(rng.uniform(-1, 1, (batch, 4)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=batch), jnp.float32),
        discount=jnp.full((batch,), 0.99, jnp.float32),
        next_obs=example(obs, batch, seed + 1),
    )


def test_the_cnn_torso_shapes_and_its_gradient():
    spec = spec_for(IMAGE, cnn="8-3-2,8-3-1+32")
    state = init_learner(spec, jax.random.PRNGKey(0), example(IMAGE))
    assert set(state.critic) == {"encoder", "heads"}
    heads_kernel = state.critic["heads"]["params"]["Dense_0"]["kernel"]
    assert heads_kernel.shape == (2, 32 + 4, 16)  # two critics' heads on one shared encoder's 32 features
    assert state.critic["encoder"]["params"]["cnn_0"]["PatchConv_0"]["kernel"].shape == (3, 3, 3, 8)
    new, _, _ = jax.jit(update_block, static_argnums=0)(
        spec, state, jax.tree_util.tree_map(lambda x: x[None], batch_of(IMAGE)), 1
    )
    for group in ("actor", "critic"):
        before = getattr(state, group)["encoder"]["params"]["cnn_0"]["PatchConv_0"]["kernel"]
        after = getattr(new, group)["encoder"]["params"]["cnn_0"]["PatchConv_0"]["kernel"]
        assert not np.allclose(before, after), group


def test_a_detached_shared_encoder_is_trained_by_the_critic_alone():
    spec = spec_for(IMAGE, shared_encoder=True)
    state = init_learner(spec, jax.random.PRNGKey(0), example(IMAGE))
    assert_trees_equal(state.actor["encoder"], state.critic["encoder"])
    after_actor, _ = actor_step(spec, state, batch_of(IMAGE))
    assert_trees_equal(after_actor.critic["encoder"], state.critic["encoder"])
    assert_trees_equal(after_actor.actor["encoder"], state.actor["encoder"])
    assert not np.allclose(leaves(after_actor.actor["head"])[0], leaves(state.actor["head"])[0])
    after_critic = critic_step(spec, state, batch_of(IMAGE), jax.random.PRNGKey(1))[0]
    assert not np.allclose(leaves(after_critic.critic["encoder"])[0], leaves(state.critic["encoder"])[0])
    assert_trees_equal(after_critic.actor["encoder"], after_critic.critic["encoder"])

    through = spec_for(IMAGE, shared_encoder=True, encoder_actor_gradient=True)
    moved, _ = actor_step(
        through, init_learner(through, jax.random.PRNGKey(0), example(IMAGE)), batch_of(IMAGE)
    )
    assert not np.allclose(leaves(moved.critic["encoder"])[0], leaves(state.critic["encoder"])[0])
    assert_trees_equal(moved.actor["encoder"], moved.critic["encoder"])


def frozen_file(tmp_path):
    from dpgkit.nets.torsos import CNN

    conv, features = ((8, 3, 2),), 12
    params = CNN(conv, features).init(jax.random.PRNGKey(5), jnp.zeros((1, 16, 16, 3), jnp.uint8), 3)
    return save_encoder(tmp_path / "encoder.npz", conv, features, params), params


def test_an_encoder_file_round_trips(tmp_path):
    path, params = frozen_file(tmp_path)
    file = read_encoder(path)
    assert file.conv == ((8, 3, 2),) and file.features == 12 and file.latent == 0
    assert_trees_equal(file.params, jax.tree_util.tree_map(np.asarray, params))
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="cannot read the encoder file"):
        read_encoder(tmp_path / "bad.npz")


def test_a_frozen_encoder_gets_no_update_no_polyak_and_no_perturbation(tmp_path):
    from dpgkit.nets.spec import loaded_params

    path, params = frozen_file(tmp_path)
    spec = spec_for(IMAGE, torsos=(f"obs=frozen:{path}",), critic_l2=0.01)
    state = init_learner(spec, jax.random.PRNGKey(0), example(IMAGE), loaded_params(spec.inputs))
    frozen = np.asarray(params["params"]["PatchConv_0"]["kernel"])
    for group in ("actor", "critic", "target_actor", "target_critic"):
        np.testing.assert_array_equal(
            getattr(state, group)["encoder"]["params"]["frozen_0"]["PatchConv_0"]["kernel"], frozen
        )
    batches = jax.tree_util.tree_map(lambda x: jnp.stack([x] * 4), batch_of(IMAGE))
    new, _, _ = jax.jit(update_block, static_argnums=0)(spec, state, batches, 0)
    for group in ("actor", "critic", "target_actor", "target_critic"):
        assert_trees_equal(getattr(new, group)["encoder"], getattr(state, group)["encoder"])
    assert not np.allclose(leaves(new.actor["head"])[0], leaves(state.actor["head"])[0])
    perturbed = perturb(new.actor, 0.5, np.random.default_rng(0))
    assert_trees_equal(perturbed["encoder"], new.actor["encoder"])
    assert not np.allclose(leaves(perturbed["head"])[0], leaves(new.actor["head"])[0])


def test_parameter_noise_leaves_a_trained_cnn_as_it_is():
    spec = spec_for(IMAGE)
    actor = init_learner(spec, jax.random.PRNGKey(0), example(IMAGE)).actor
    perturbed = perturb(actor, 0.5, np.random.default_rng(0))
    assert_trees_equal(perturbed["encoder"], actor["encoder"])
    assert not np.allclose(leaves(perturbed["head"])[0], leaves(actor["head"])[0])


def test_noisynet_layers_are_the_trunk_and_head_after_a_cnn():
    spec = spec_for(IMAGE, explore="noisy")
    actor = init_learner(spec, jax.random.PRNGKey(0), example(IMAGE)).actor
    names = set(actor["head"]["params"])
    assert names == {"NoisyDense_0", "NoisyDense_1", "NoisyDense_2"}
    assert "PatchConv_0" in actor["encoder"]["params"]["cnn_0"]


def test_random_shift_moves_whole_images_within_the_pad():
    images = jnp.asarray(
        np.arange(2 * 2 * 6 * 6).reshape(2, 2, 6, 6, 1) % 251, jnp.uint8
    )  # 2 stacks of 2 frames
    shifted = np.asarray(random_shift(images, jax.random.PRNGKey(3), 2))
    padded = np.pad(np.asarray(images), [(0, 0), (0, 0), (2, 2), (2, 2), (0, 0)], mode="edge")
    for b in range(2):
        matches = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(shifted[b], padded[b, :, dy : dy + 6, dx : dx + 6])
        ]
        assert matches, b  # the frames of one stack moved together by one offset in [-2, 2]^2
    assert shifted.dtype == np.uint8


def test_augmentation_changes_only_images_and_obs_apart_from_next_obs():
    from dpgkit.learn.learner import augmented

    obs = {"pixels": IMAGE, "state": obs_spec(gym.spaces.Box(-1.0, 1.0, (3,)))}
    spec = spec_for(obs, augment_shift=4)
    batch = batch_of(obs, batch=8)
    batch = batch._replace(next_obs=batch.obs)
    out = augmented(spec, jax.tree_util.tree_map(lambda x: x[None], batch), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(out.obs["state"][0], batch.obs["state"])
    assert not np.array_equal(out.obs["pixels"][0], out.next_obs["pixels"][0])
    assert not np.array_equal(out.obs["pixels"][0], batch.obs["pixels"])


MIRROR = ("pixels=flip", "state=1,-1,1", "action=-1,1,1,-1")


def test_mirroring_flips_a_random_half_of_the_transitions_obs_action_and_next_obs_together():
    from dpgkit.learn.learner import mirrored

    obs = {"pixels": IMAGE, "state": obs_spec(gym.spaces.Box(-1.0, 1.0, (3,)))}
    batch = batch_of(obs, batch=64)
    out = mirrored(
        spec_for(obs, mirror=MIRROR), jax.tree_util.tree_map(lambda x: x[None], batch), jax.random.PRNGKey(0)
    )
    out = jax.tree_util.tree_map(lambda x: np.asarray(x[0]), out)
    flips = np.array([1.0, -1.0, 1.0]), np.array([-1.0, 1.0, 1.0, -1.0])
    flipped = ~np.all(out.action == np.asarray(batch.action), axis=1)
    assert 16 < flipped.sum() < 48
    for b, f in enumerate(flipped):
        for part in (out.obs, out.next_obs):
            source = batch.obs if part is out.obs else batch.next_obs
            image = np.asarray(source["pixels"][b])
            np.testing.assert_array_equal(part["pixels"][b], image[:, ::-1] if f else image)
            np.testing.assert_array_equal(
                part["state"][b], np.asarray(source["state"][b]) * (flips[0] if f else 1)
            )
        np.testing.assert_array_equal(out.action[b], np.asarray(batch.action[b]) * (flips[1] if f else 1))
    np.testing.assert_array_equal(out.reward, batch.reward)


@pytest.mark.parametrize(
    "mirror, message",
    [
        (("pixels=flip", "action=-1,1,1,-1"), "it needs each of pixels, state, action once"),
        (MIRROR + ("state=1,1,1",), "it needs each of"),
        (("pixels=flip", "state=1,-1", "action=-1,1,1,-1"), "state has 3 component"),
        (("pixels=flip", "state=1,-1,1", "action=-1,1"), "action has 4 component"),
        (("pixels=1", "state=flip", "action=-1,1,1,-1"), "flip is for image inputs"),
        (("pixels=flip", "state=1,0.5,1", "action=-1,1,1,-1"), "with each S 1 or -1"),
        (("pixels", "state=1,-1,1", "action=-1,1,1,-1"), "'pixels' is not name=flip"),
    ],
)
def test_a_wrong_mirror_is_refused_with_what_is_wrong(mirror, message):
    obs = {"pixels": IMAGE, "state": obs_spec(gym.spaces.Box(-1.0, 1.0, (3,)))}
    with pytest.raises(ValueError, match=message):
        spec_for(obs, mirror=mirror)


def test_training_with_the_mirror_compiles_it_and_saves_it_with_the_config(tmp_path):
    from dpgkit.envs.lanefollow import STATE_ENV_ID, STATE_MIRROR

    agent = DDPG(STATE_ENV_ID, seed=0, run_dir=str(tmp_path), total_steps=200, mirror=STATE_MIRROR, **SMALL)
    agent.learn()
    assert agent.trainer.driver.spec.mirror_action == (-1.0, 1.0)
    agent.save()
    assert DDPG.load(tmp_path).trainer.config.mirror == STATE_MIRROR


def test_the_parkour_network_trains_on_bipedal_walker_from_its_flat_observation(tmp_path):
    agent = TD3(
        "BipedalWalker-v3", seed=0, run_dir=str(tmp_path), total_steps=300, network="parkour", **SMALL
    )
    agent.learn(150)
    assert sorted(agent.observation_spec) == ["proprioception", "terrain"]
    params = agent.trainer.state.actor["params"]
    assert params["Dense_0"]["kernel"].shape[-2] == 14 and "mlp_1" in params
    assert agent.act(
        {"proprioception": np.zeros(14, np.float32), "terrain": np.ones(10, np.float32)}
    ).shape == (4,)
