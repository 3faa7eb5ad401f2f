"""The VAE encoder of Kendall et al. 2018: its training, its file, the agent's frozen or fine-tuned encoder from
it, the config's errors and the `dpgkit pretrain-vae` command."""

from __future__ import annotations

import json

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpgkit import cli
from dpgkit.config import DDPGConfig, validate
from dpgkit.driver import learner_spec
from dpgkit.envs import obs_spec
from dpgkit.learn import Batch, init_learner, update_block
from dpgkit.nets import make_encoders
from dpgkit.nets.spec import loaded_params, read_encoder
from dpgkit.nets.torsos import CNN
from dpgkit.nets.vae import VAE, init_vae, read_vae, save_vae, vae_train_step
from dpgkit.pretrain import collect_frames, evaluate_frames, image_entry

CONV = ((8, 3, 2), (8, 3, 2))
SHAPE = (16, 16, 1)
IMAGE = obs_spec(gym.spaces.Box(0, 255, SHAPE, np.uint8))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def blob_frames(count: int, seed: int = 0) -> np.ndarray:
    """uint8 frames (count, 16, 16, 1) of one Gaussian blob each at a random place: structure a latent can hold."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:16, :16]
    centres = rng.uniform(3, 13, (count, 2))
    d2 = (rows - centres[:, :1, None]) ** 2 + (cols - centres[:, 1:, None]) ** 2
    return np.rint(255 * np.exp(-d2 / 8.0))[..., None].astype(np.uint8)


def tiny_vae(latent: int = 4) -> VAE:
    return VAE(CONV, 0, latent, SHAPE)


def vae_file(tmp_path, latent: int = 4):
    vae = tiny_vae(latent)
    params = init_vae(vae, jax.random.PRNGKey(3))
    return save_vae(tmp_path / "vae.npz", vae, params), vae, params


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_trees_equal(a, b) -> None:
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for u, v in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


def test_the_reconstruction_loss_falls_below_the_mean_images():
    frames = blob_frames(64)
    vae = tiny_vae(latent=8)
    optimizer = optax.adam(1e-2)
    params = init_vae(vae, jax.random.PRNGKey(0))
    opt_state = optimizer.init(params)
    step = vae_train_step(vae, optimizer, 16, 0.1)
    before = evaluate_frames(vae, params, frames)[0]
    device = jnp.asarray(frames)
    for update in range(150):
        params, opt_state, _ = step(params, opt_state, device, jax.random.PRNGKey(update))
    after = evaluate_frames(vae, params, frames)[0]
    pixels = frames / 255.0
    mean_image = np.sum((pixels - pixels.mean(axis=0)) ** 2) / len(frames)  # the best latent-blind guess
    assert after < 0.5 * mean_image < before, (before, mean_image, after)


@pytest.mark.parametrize(
    ("shape", "conv"),
    [((16, 16, 1), CONV), ((17, 15, 3), ((4, 3, 2), (4, 4, 3))), ((64, 64, 3), ((16, 3, 2),) * 4)],
)
def test_the_decoder_gives_back_the_image_shape(shape, conv):
    vae = VAE(conv, 0, 4, shape)
    params = jax.eval_shape(lambda: init_vae(vae, jax.random.PRNGKey(0)))
    out = jax.eval_shape(
        lambda p: vae.apply(p, jnp.zeros((2, *shape), jnp.uint8), jnp.zeros((2, 4)))[0], params
    )
    assert out.shape == (2, *shape)


def test_a_saved_vae_reads_back_and_its_encoder_is_the_agents_torso(tmp_path):
    path, vae, params = vae_file(tmp_path)
    read, read_params = read_vae(path)
    assert read == vae
    assert_trees_equal(read_params, params)
    file = read_encoder(path)
    assert (file.conv, file.features, file.latent, file.image_shape) == (CONV, 0, 4, SHAPE)

    images = jnp.asarray(blob_frames(5))
    mean = vae.apply(params, images, method=VAE.encode)[0]
    np.testing.assert_array_equal(CNN(CONV, 0, 4).apply(file.params, images, 3), mean)
    spec = learner_spec(DDPGConfig(hidden=(16, 16), encoder=f"vae:{path}"), 2, IMAGE)
    assert spec.inputs[0].torso.kind == "frozen" and spec.inputs[0].torso.latent == 4
    encoded = make_encoders(spec.inputs, spec.ndims).apply({"params": loaded_params(spec.inputs)}, images)
    np.testing.assert_array_equal(encoded["0"], mean)


def a_format_1_file(tmp_path):
    params = CNN(CONV, 6).init(jax.random.PRNGKey(1), jnp.zeros((1, *SHAPE), jnp.uint8), 3)
    arrays = {
        jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    header = json.dumps({"format": 1, "conv": [list(c) for c in CONV], "features": 6})
    path = tmp_path / "old.npz"
    np.savez(path, __header__=np.array(header), **arrays)
    return path, params


def test_format_1_encoder_files_still_work_as_frozen_torsos(tmp_path):
    path, params = a_format_1_file(tmp_path)
    file = read_encoder(path)
    assert (file.latent, file.image_shape) == (0, ())
    spec = learner_spec(DDPGConfig(hidden=(16, 16), torsos=(f"obs=frozen:{path}",)), 2, IMAGE)
    assert_trees_equal(loaded_params(spec.inputs), {"frozen_0": params["params"]})


def learner_batches(obs_names: tuple[str, ...], count: int = 2, batch: int = 8) -> Batch:
    rng = np.random.default_rng(0)

    def images(seed):
        frames = blob_frames(count * batch, seed).reshape(count, batch, *SHAPE)
        return {name: jnp.asarray(np.roll(frames, i, axis=-2)) for i, name in enumerate(obs_names)}

    return Batch(
        obs=images(1),
        action=jnp.asarray(rng.uniform(-1, 1, (count, batch, 2)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=(count, batch)), jnp.float32),
        discount=jnp.full((count, batch), 0.99, jnp.float32),
        next_obs=images(2),
    )


def test_encoder_trainable_makes_the_vae_encoder_pretrained_instead_of_frozen(tmp_path):
    path, _, _ = vae_file(tmp_path)
    config = DDPGConfig(hidden=(16, 16), encoder=f"vae:{path}")
    frozen = learner_spec(config, 2, IMAGE).inputs[0].torso
    trainable = learner_spec(config.replace(encoder_trainable=True), 2, IMAGE).inputs[0].torso
    assert (frozen.kind, trainable.kind) == ("frozen", "pretrained")
    assert trainable == learner_spec(DDPGConfig(torsos=(f"obs=pretrained:{path}",)), 2, IMAGE).inputs[0].torso
    assert frozen == learner_spec(DDPGConfig(torsos=(f"obs=frozen:{path}",)), 2, IMAGE).inputs[0].torso


def test_a_frozen_vae_encoder_stays_as_loaded_and_a_pretrained_one_learns(tmp_path):
    path, _, params = vae_file(tmp_path)
    obs = {name: IMAGE for name in ("fixed", "tuned")}
    torsos = (f"fixed=frozen:{path}", f"tuned=pretrained:{path}")
    spec = learner_spec(DDPGConfig(hidden=(16, 16), torsos=torsos, critic_l2=0.01), 2, obs)
    example = {name: jnp.zeros((1, *SHAPE), jnp.uint8) for name in obs}
    state = init_learner(spec, jax.random.PRNGKey(0), example, loaded_params(spec.inputs))
    for group in (state.actor, state.critic):
        for module in ("frozen_0", "pretrained_1"):
            assert_trees_equal(group["encoder"]["params"][module], params["params"]["encoder"])
    new = jax.jit(update_block, static_argnums=0)(spec, state, learner_batches(tuple(obs)), 0)[0]
    for name in ("actor", "critic", "target_actor", "target_critic"):
        before, after = getattr(state, name)["encoder"]["params"], getattr(new, name)["encoder"]["params"]
        assert_trees_equal(after["frozen_0"], before["frozen_0"])
        assert not np.allclose(leaves(after["pretrained_1"])[0], leaves(before["pretrained_1"])[0]), name


def test_the_encoder_fields_say_what_is_wrong(tmp_path):
    path, _, _ = vae_file(tmp_path)
    with pytest.raises(ValueError, match="config.encoder must read vae:PATH"):
        validate(DDPGConfig(encoder=str(path)))
    with pytest.raises(ValueError, match="config.encoder: the VAE file .*missing.npz does not exist"):
        validate(DDPGConfig(encoder=f"vae:{tmp_path / 'missing.npz'}"))
    with pytest.raises(ValueError, match="config.encoder_trainable needs config.encoder"):
        validate(DDPGConfig(encoder_trainable=True))
    config = DDPGConfig(hidden=(16, 16), encoder=f"vae:{path}")
    with pytest.raises(ValueError, match="config.encoder needs a uint8 image input"):
        learner_spec(config, 2, obs_spec(gym.spaces.Box(-1, 1, (3,), np.float32)))
    with pytest.raises(
        ValueError, match="config.encoder: the image input 'obs' of shape \\(4, 4, 1\\) is too small"
    ):
        learner_spec(config, 2, obs_spec(gym.spaces.Box(0, 255, (4, 4, 1), np.uint8)))
    with pytest.raises(ValueError, match="config.encoder: the encoder file .* does not fit the input 'obs'"):
        learner_spec(config, 2, obs_spec(gym.spaces.Box(0, 255, (20, 20, 1), np.uint8)))
    two = gym.spaces.Dict(
        {"left": gym.spaces.Box(0, 255, SHAPE, np.uint8), "right": gym.spaces.Box(0, 255, SHAPE, np.uint8)}
    )
    with pytest.raises(ValueError, match="use config.torsos instead, name=frozen:PATH"):
        learner_spec(config, 2, obs_spec(two))
    with pytest.raises(ValueError, match="whose encoder config.encoder already gives"):
        learner_spec(config.replace(torsos=("obs=cnn:small",)), 2, IMAGE)
    old, _ = a_format_1_file(tmp_path)
    with pytest.raises(ValueError, match="has no latent layer"):
        learner_spec(config.replace(encoder=f"vae:{old}"), 2, IMAGE)


def test_the_image_entry_is_the_only_image_or_the_chosen_one():
    image = gym.spaces.Box(0, 255, SHAPE, np.uint8)
    vector = gym.spaces.Box(-1, 1, (3,), np.float32)
    assert image_entry(image, "") == ""
    assert image_entry(gym.spaces.Dict({"camera": image, "speed": vector}), "") == "camera"
    two = gym.spaces.Dict({"front": image, "rear": image})
    assert image_entry(two, "rear") == "rear"
    with pytest.raises(ValueError, match="holds 2 images \\['front', 'rear'\\]: choose one with --image-key"):
        image_entry(two, "")
    with pytest.raises(ValueError, match="holds no image: the VAE learns from a uint8 image"):
        image_entry(vector, "")


def test_pretrain_vae_then_train_ddpg_on_its_encoder(tmp_path, capsys):
    out = tmp_path / "vae" / "dot.npz"
    cli.main(
        ["pretrain-vae", "--env", "dpgkit/PixelDot-v0", "--episodes", "1", "--updates", "5",
         "--batch-size", "8", "--latent", "4", "--cnn", "8-3-2,8-3-2", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "vae 5/5 (100%)" in printed  # plain progress lines off a terminal
    assert f"saved {out}" in printed and "learnt from 51 frames" in printed
    assert read_encoder(out).latent == 4
    assert (tmp_path / "vae" / "dot-reconstructions.png").read_bytes()[:8] == PNG_MAGIC

    run = tmp_path / "run"
    cli.main(
        ["train", "ddpg", "--env", "dpgkit/PixelDot-v0", "--encoder", f"vae:{out}", "--total-steps", "300",
         "--learning-starts", "100", "--hidden", "16", "16", "--batch-size", "16", "--eval-every", "0",
         "--eval-episodes", "1", "--run-dir", str(run), "--no-progress"]
    )  # fmt: skip
    assert "seed 0: evaluation return" in capsys.readouterr().out
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000000300"
    cli.main(["resume", str(run), "--total-steps", "350"])  # the spec is rebuilt from the saved config
    assert "resuming ddpg on dpgkit/PixelDot-v0 at step 300 of 350" in capsys.readouterr().out


def test_pretrain_vae_names_an_observation_without_an_image(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pretrain-vae", "--env", "Pendulum-v1", "--updates", "1"])
    assert "holds no image" in capsys.readouterr().err


def test_each_pretraining_episode_draws_its_own_road():
    env = gym.make("LaneFollow-v0", safety_driver=True, image_size=16)
    frames = collect_frames(env, "image", episodes=4, episode_steps=3, seed=0)
    env.close()
    assert frames.shape == (4 * 4, 16, 16, 3)
    first_frames = {frame.tobytes() for frame in frames[::4]}
    assert len(first_frames) == 4
