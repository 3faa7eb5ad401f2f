"""The shared learner: initialisation, gradient isolation, Polyak targets, policy delay, network layout,
initialisation bounds, critic L2 and the seed mapping.

Compilation dominates the run time on CPU, so the expensive calls are made once per module (fixtures) and
reference values are computed with plain numpy forward passes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpgkit.config import TD3Config
from dpgkit.driver import learner_spec
from dpgkit.learn.learner import (
    Batch,
    LearnerSpec,
    actor_step,
    critic_step,
    init_learner,
    update_block,
)

OBS_DIM, ACT_DIM, BATCH = 3, 2, 5
HIDDEN = (8, 6)


def spec_of(**fields) -> LearnerSpec:
    """The learner settings of a TD3 config with HIDDEN layers and some fields changed."""
    return learner_spec(TD3Config(hidden=HIDDEN).replace(**fields), ACT_DIM)


SPEC = spec_of(tau=0.1, target_noise=0.0, critic_lr=1e-3, actor_lr=1e-3)
DDPG_SPEC = spec_of(policy_delay=1, num_critics=1, target_noise=0.0)

jit_init = jax.jit(init_learner, static_argnums=0)
jit_update_block = jax.jit(update_block, static_argnums=0)
jit_critic_step = jax.jit(critic_step, static_argnums=0)
jit_actor_step = jax.jit(actor_step, static_argnums=0)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def trees_equal(a, b) -> bool:
    la, lb = leaves(a), leaves(b)
    return len(la) == len(lb) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(la, lb))


def make_batch(seed: int, lead=()) -> Batch:
    rng = np.random.default_rng(seed)
    shape = lead + (BATCH,)
    return Batch(
        obs=jnp.asarray(rng.normal(size=shape + (OBS_DIM,)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=shape + (ACT_DIM,)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=shape), jnp.float32),
        discount=jnp.asarray(0.99 * (rng.uniform(size=shape) > 0.3), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=shape + (OBS_DIM,)), jnp.float32),
    )


def fresh(spec: LearnerSpec, seed: int = 0):
    return jit_init(spec, jax.random.PRNGKey(seed), jnp.zeros((BATCH, OBS_DIM), jnp.float32))


def with_perturbed_targets(state, seed: int = 7):
    """Targets that differ from the online networks, so Polyak averaging is visible."""
    rng = np.random.default_rng(seed)

    def shift(tree):
        return jax.tree_util.tree_map(lambda x: x + np.asarray(rng.normal(0, 0.1, x.shape), np.float32), tree)

    return state._replace(target_actor=shift(state.target_actor), target_critic=shift(state.target_critic))


def one_critic(params, i):
    return jax.tree_util.tree_map(lambda p: p[i], params)


# ---------------------------------------------------------------- numpy reference networks


def relu(x):
    return np.maximum(x, 0.0)


def np_layers(params, index=None):
    p = params["params"]
    return [
        (np.asarray(p[f"Dense_{j}"]["kernel"], np.float64), np.asarray(p[f"Dense_{j}"]["bias"], np.float64))
        if index is None
        else (
            np.asarray(p[f"Dense_{j}"]["kernel"][index], np.float64),
            np.asarray(p[f"Dense_{j}"]["bias"][index], np.float64),
        )
        for j in range(len(p))
    ]


def np_actor(params, obs):
    layers = np_layers(params)
    x = np.asarray(obs, np.float64)
    for w, b in layers[:-1]:
        x = relu(x @ w + b)
    w, b = layers[-1]
    return np.tanh(x @ w + b)


def np_critic_outputs(params, i, obs, action, action_layer=0):
    layers = np_layers(params, i)
    x = np.asarray(obs, np.float64)
    for j, (w, b) in enumerate(layers[:-1]):
        if j == action_layer:
            x = np.concatenate([x, np.asarray(action, np.float64)], -1)
        x = relu(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def np_critic(params, i, obs, action, action_layer=0):
    return np_critic_outputs(params, i, obs, action, action_layer)[..., 0]


# ---------------------------------------------------------------- fixtures: one call each


@pytest.fixture(scope="module")
def state0():
    return fresh(SPEC)


@pytest.fixture(scope="module")
def critic_case(state0):
    """One critic step from a state whose targets differ from the online nets, plus gradients of its loss."""
    state = with_perturbed_targets(state0)
    batch = make_batch(1)
    key = jax.random.PRNGKey(3)
    new, loss, *_ = jit_critic_step(SPEC, state, batch, key)

    @jax.jit
    def grads(actor, critic):
        return jax.grad(
            lambda a, c: critic_step(SPEC, state._replace(actor=a, critic=c), batch, key)[1], argnums=(0, 1)
        )(actor, critic)

    g_actor, g_critic = grads(state.actor, state.critic)
    return state, batch, new, loss, g_actor, g_critic


@pytest.fixture(scope="module")
def actor_case(state0):
    """One actor step from a state whose targets differ from the online nets, plus gradients of its loss."""
    state = with_perturbed_targets(state0)
    batch = make_batch(4)
    new, loss = jit_actor_step(SPEC, state, batch)

    @jax.jit
    def grads(actor, critic):
        return jax.grad(
            lambda a, c: actor_step(SPEC, state._replace(actor=a, critic=c), batch)[1], argnums=(0, 1)
        )(actor, critic)

    g_actor, g_critic = grads(state.actor, state.critic)
    return state, batch, new, loss, g_actor, g_critic


# ---------------------------------------------------------------- init


def test_init_targets_equal_online(state0):
    assert trees_equal(state0.target_actor, state0.actor)
    assert trees_equal(state0.target_critic, state0.critic)


def test_init_critics_stacked_and_distinct(state0):
    critic = state0.critic["params"]
    assert critic["Dense_0"]["kernel"].shape == (2, OBS_DIM + ACT_DIM, HIDDEN[0])
    assert critic["Dense_1"]["kernel"].shape == (2, HIDDEN[0], HIDDEN[1])
    assert critic["Dense_2"]["kernel"].shape == (2, HIDDEN[1], 1)
    assert critic["Dense_2"]["bias"].shape == (2, 1)
    for leaf in leaves(state0.critic):
        assert leaf.shape[0] == 2
        assert not np.array_equal(leaf[0], leaf[1])
    actor = state0.actor["params"]
    assert actor["Dense_0"]["kernel"].shape == (OBS_DIM, HIDDEN[0])
    assert actor["Dense_2"]["kernel"].shape == (HIDDEN[1], ACT_DIM)


def test_default_init_is_fan_in_uniform(state0):
    checks = [
        (state0.actor["params"]["Dense_0"], OBS_DIM),
        (state0.actor["params"]["Dense_1"], HIDDEN[0]),
        (state0.actor["params"]["Dense_2"], HIDDEN[1]),
        (state0.critic["params"]["Dense_0"], OBS_DIM + ACT_DIM),
        (state0.critic["params"]["Dense_2"], HIDDEN[1]),
    ]
    for layer, fan_in in checks:
        k = np.abs(np.asarray(layer["kernel"]))
        assert k.max() <= fan_in**-0.5
        assert k.max() > 0.5 * fan_in**-0.5
        assert np.abs(np.asarray(layer["bias"])).max() <= fan_in**-0.5


# ---------------------------------------------------------------- critic step


def test_critic_step_changes_only_critic(critic_case):
    state, _, new, loss, _, _ = critic_case
    assert np.isfinite(float(loss))
    assert trees_equal(new.actor, state.actor)
    assert trees_equal(new.target_actor, state.target_actor)
    assert trees_equal(new.target_critic, state.target_critic)
    assert trees_equal(new.actor_opt, state.actor_opt)
    assert trees_equal(new.key, state.key)
    for i in range(2):  # both critics moved
        assert not trees_equal(one_critic(new.critic, i), one_critic(state.critic, i))
    assert not trees_equal(new.critic_opt, state.critic_opt)


def test_critic_step_loss_by_hand(critic_case):
    """y = r + discount * min_i Q'_i(s', mu'(s')) (no smoothing noise), loss = sum_i mean_b (Q_i(s, a) - y)^2."""
    state, batch, _, loss, _, _ = critic_case
    next_a = np_actor(state.target_actor, batch.next_obs)
    next_q = np.stack([np_critic(state.target_critic, i, batch.next_obs, next_a) for i in range(2)])
    y = np.asarray(batch.reward) + np.asarray(batch.discount) * next_q.min(axis=0)
    q = np.stack([np_critic(state.critic, i, batch.obs, batch.action) for i in range(2)])
    expected = np.sum(np.mean((q - y) ** 2, axis=-1))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # the target uses the target networks: with the online ones the loss would differ
    next_q_online = np.stack(
        [np_critic(state.critic, i, batch.next_obs, np_actor(state.actor, batch.next_obs)) for i in range(2)]
    )
    y_online = np.asarray(batch.reward) + np.asarray(batch.discount) * next_q_online.min(axis=0)
    assert abs(np.sum(np.mean((q - y_online) ** 2, axis=-1)) - expected) > 1e-3


def test_critic_step_applies_its_loss_gradient(critic_case):
    """First Adam step: theta <- theta - lr * g / (|g| + eps)."""
    state, _, new, _, _, g_critic = critic_case
    assert any(np.abs(g).max() > 0 for g in leaves(g_critic))
    for old, g, got in zip(leaves(state.critic), leaves(g_critic), leaves(new.critic)):
        np.testing.assert_allclose(got, old - SPEC.critic_lr * g / (np.abs(g) + 1e-8), atol=2e-5)


def test_critic_loss_has_zero_gradient_wrt_actor(critic_case):
    g_actor = critic_case[4]
    for leaf in leaves(g_actor):
        np.testing.assert_array_equal(leaf, np.zeros_like(leaf))


# ---------------------------------------------------------------- actor step


def test_actor_step_changes_actor_and_polyaks_targets(actor_case):
    state, _, new, loss, _, _ = actor_case
    assert np.isfinite(float(loss))
    assert trees_equal(new.critic, state.critic)
    assert trees_equal(new.critic_opt, state.critic_opt)
    assert trees_equal(new.key, state.key)
    assert not trees_equal(new.actor, state.actor)
    assert not trees_equal(new.actor_opt, state.actor_opt)
    tau = SPEC.tau
    for t_old, online, t_new in zip(leaves(state.target_actor), leaves(new.actor), leaves(new.target_actor)):
        np.testing.assert_allclose(t_new, t_old + tau * (online - t_old), rtol=1e-6, atol=1e-7)
        assert not np.array_equal(t_new, t_old)
    for t_old, online, t_new in zip(
        leaves(state.target_critic), leaves(state.critic), leaves(new.target_critic)
    ):
        np.testing.assert_allclose(t_new, t_old + tau * (online - t_old), rtol=1e-6, atol=1e-7)
        assert not np.array_equal(t_new, t_old)


def test_actor_loss_goes_through_first_critic_only(actor_case):
    state, batch, new, loss, _, g_critic = actor_case
    mu = np_actor(state.actor, batch.obs)
    q1 = np_critic(state.critic, 0, batch.obs, mu)
    q2 = np_critic(state.critic, 1, batch.obs, mu)
    np.testing.assert_allclose(float(loss), -q1.mean(), rtol=1e-5)
    assert abs(-q2.mean() - float(loss)) > 1e-4
    # the actor loss depends on critic 1's parameters and on no other critic's ...
    assert any(np.abs(x).max() > 0 for x in leaves(one_critic(g_critic, 0)))
    assert all(np.abs(x).max() == 0 for x in leaves(one_critic(g_critic, 1)))
    # ... but that gradient is never applied to the critic
    assert trees_equal(new.critic, state.critic)


def test_actor_step_applies_dpg_gradient(actor_case):
    state, _, new, _, g_actor, _ = actor_case
    assert any(np.abs(g).max() > 0 for g in leaves(g_actor))
    for old, g, got in zip(leaves(state.actor), leaves(g_actor), leaves(new.actor)):
        np.testing.assert_allclose(got, old - SPEC.actor_lr * g / (np.abs(g) + 1e-8), atol=2e-5)


# ---------------------------------------------------------------- policy delay


def test_policy_delay_two_block_of_four(state0):
    batches = make_batch(7, lead=(4,))
    new, summary, _ = jit_update_block(SPEC, state0, batches, 0)
    assert int(summary["actor_steps"]) == 2
    assert not trees_equal(new.actor, state0.actor)
    assert not trees_equal(new.target_actor, state0.target_actor)
    assert not trees_equal(new.critic, state0.critic)
    assert np.isfinite(float(summary["critic_loss"]))
    assert float(summary["actor_loss_sum"]) != 0.0


def test_policy_delay_two_single_update_skips_actor(state0):
    state = with_perturbed_targets(state0)
    new, summary, _ = jit_update_block(SPEC, state, make_batch(8, lead=(1,)), 0)
    assert int(summary["actor_steps"]) == 0
    assert float(summary["actor_loss_sum"]) == 0.0
    assert trees_equal(new.actor, state.actor)
    assert trees_equal(new.actor_opt, state.actor_opt)
    assert trees_equal(new.target_actor, state.target_actor)
    assert trees_equal(new.target_critic, state.target_critic)
    assert not trees_equal(new.critic, state.critic)
    assert not trees_equal(new.key, state.key)  # the learner key advances every update

    # the second update (global index 1) is an actor update
    new2, summary2, _ = jit_update_block(SPEC, new, make_batch(9, lead=(1,)), 1)
    assert int(summary2["actor_steps"]) == 1
    assert not trees_equal(new2.actor, new.actor)
    assert not trees_equal(new2.target_critic, new.target_critic)


def test_init_single_critic_keeps_critic_axis():
    shapes = jax.eval_shape(
        lambda k: init_learner(DDPG_SPEC, k, jnp.zeros((BATCH, OBS_DIM))), jax.random.PRNGKey(0)
    )
    assert shapes.critic["params"]["Dense_0"]["kernel"].shape == (1, OBS_DIM + ACT_DIM, HIDDEN[0])
    for leaf in jax.tree_util.tree_leaves(shapes.critic) + jax.tree_util.tree_leaves(shapes.target_critic):
        assert leaf.shape[0] == 1
    shapes3 = jax.eval_shape(
        lambda k: init_learner(spec_of(num_critics=3), k, jnp.zeros((7, 4))),
        jax.random.PRNGKey(0),
    )
    assert shapes3.critic["params"]["Dense_0"]["kernel"].shape == (3, 4 + ACT_DIM, HIDDEN[0])
    assert shapes3.actor["params"]["Dense_0"]["kernel"].shape == (4, HIDDEN[0])


def test_policy_delay_one_updates_actor_every_time(state0):
    # a one-critic state taken from state0 (saves compiling another initialisation)
    critic = jax.tree_util.tree_map(lambda x: x[:1], state0.critic)
    state = state0._replace(
        critic=critic, target_critic=critic, critic_opt=jax.jit(DDPG_SPEC.critic_optimizer.init)(critic)
    )
    for first in (0, 1, 2):
        new, summary, _ = jit_update_block(DDPG_SPEC, state, make_batch(10 + first, lead=(1,)), first)
        assert int(summary["actor_steps"]) == 1
        assert not trees_equal(new.actor, state.actor)
        assert not trees_equal(new.target_actor, state.target_actor)
        assert not trees_equal(new.critic, state.critic)
        state = new


# ---------------------------------------------------------------- networks


def test_critic_action_layer_one_layout_forward_and_final_init():
    spec = spec_of(critic_action_layer=1, final_init=3e-3)
    batch = make_batch(11)

    @jax.jit
    def init_and_apply(key):
        actor_key, critic_key = jax.random.split(key)
        actor = spec.actor.init(actor_key, batch.obs)
        critic = spec.critic.init(critic_key, batch.obs, batch.action)
        return actor, critic, spec.critic.apply(critic, batch.obs, batch.action)

    actor, critic, q = init_and_apply(jax.random.PRNGKey(0))
    p = critic["params"]
    assert p["Dense_0"]["kernel"].shape == (OBS_DIM, HIDDEN[0])
    assert p["Dense_1"]["kernel"].shape == (HIDDEN[0] + ACT_DIM, HIDDEN[1])
    assert p["Dense_2"]["kernel"].shape == (HIDDEN[1], 1)
    stacked = jax.tree_util.tree_map(lambda x: x[None], critic)
    np.testing.assert_allclose(
        np.asarray(q), np_critic(stacked, 0, batch.obs, batch.action, 1), rtol=1e-5, atol=1e-6
    )
    # the same obs with the action entering the first layer instead would not even fit the kernels
    assert p["Dense_0"]["kernel"].shape[0] != OBS_DIM + ACT_DIM

    # final_init bounds the last layers (weights and biases) of the actor and the critic
    bound = 3e-3
    for net in (actor, critic):
        last = net["params"]["Dense_2"]
        for name in ("kernel", "bias"):
            x = np.abs(np.asarray(last[name]))
            assert x.max() <= bound
            assert x.max() > bound / 10  # drawn from the range, not zeros
        # the hidden layers keep the fan-in initialisation
        assert np.abs(np.asarray(net["params"]["Dense_1"]["kernel"])).max() > 10 * bound


def test_critic_and_actor_forward_match_numpy(state0):
    batch = make_batch(12)

    @jax.jit
    def forward(actor, critic):
        return SPEC.actor.apply(actor, batch.obs), SPEC.critic.apply(
            one_critic(critic, 1), batch.obs, batch.action
        )

    a, q = forward(state0.actor, state0.critic)
    np.testing.assert_allclose(np.asarray(a), np_actor(state0.actor, batch.obs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(q), np_critic(state0.critic, 1, batch.obs, batch.action), rtol=1e-5, atol=1e-6
    )


# ---------------------------------------------------------------- critic L2


def zero_gradient_step(opt, params):
    """One optimizer update with an all-zero gradient, from a fresh optimizer state."""

    @jax.jit
    def step(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        updates, _ = opt.update(zeros, opt.init(params), params)
        return optax.apply_updates(params, updates)

    return step(params)


def test_critic_l2_decays_kernels_not_biases(state0):
    l2, lr = 1e-2, 1e-3
    spec = spec_of(critic_l2=l2, critic_lr=lr)
    critic = state0.critic
    opt = spec.critic_optimizer
    new = zero_gradient_step(opt, critic)
    for name, layer in critic["params"].items():
        old_k, new_k = np.asarray(layer["kernel"]), np.asarray(new["params"][name]["kernel"])
        g = l2 * old_k  # the decayed weight added to the (zero) gradient, then one Adam step
        np.testing.assert_allclose(new_k, old_k - lr * g / (np.abs(g) + 1e-8), atol=1e-6)
        big = np.abs(old_k) > 2 * lr
        assert np.all(np.abs(new_k[big]) < np.abs(old_k[big]))
        np.testing.assert_array_equal(np.asarray(new["params"][name]["bias"]), np.asarray(layer["bias"]))


def test_critic_without_l2_ignores_zero_gradient(state0):
    opt = SPEC.critic_optimizer
    critic = state0.critic
    assert trees_equal(zero_gradient_step(opt, critic), critic)


def test_block_equals_single_updates_in_sequence(state0):
    """K updates in one block equal K blocks of one update with the matching global indices."""
    batches = make_batch(7, lead=(4,))
    block_state, block_summary, _ = jit_update_block(SPEC, state0, batches, 0)
    state, steps = state0, 0
    for i in range(4):
        one = jax.tree_util.tree_map(lambda x, i=i: x[i : i + 1], batches)
        state, summary, _ = jit_update_block(SPEC, state, one, i)
        steps += int(summary["actor_steps"])
    assert steps == int(block_summary["actor_steps"]) == 2
    for a, b in zip(leaves(block_state), leaves(state)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- categorical critic (D4PG's head)

CAT_SPEC = spec_of(tau=0.1, target_noise=0.0, atoms=7, v_min=-3.0, v_max=3.0)
Z = np.linspace(-3.0, 3.0, 7)


def np_softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def categorical_case():
    """One categorical critic step (two critics, importance weights) and one actor step, with gradients."""
    state = with_perturbed_targets(fresh(CAT_SPEC))
    weight = jnp.asarray(np.random.default_rng(5).uniform(0.2, 1.0, BATCH), jnp.float32)
    batch = make_batch(2)._replace(weight=weight)
    key = jax.random.PRNGKey(3)
    new, loss, priorities, _ = jit_critic_step(CAT_SPEC, state, batch, key)
    g_actor = jax.jit(jax.grad(lambda a: critic_step(CAT_SPEC, state._replace(actor=a), batch, key)[1]))(
        state.actor
    )
    after_actor, actor_loss = jit_actor_step(CAT_SPEC, state, batch)
    return state, batch, new, loss, priorities, g_actor, after_actor, actor_loss


def test_categorical_critic_outputs_logits_per_atom(categorical_case):
    state, batch = categorical_case[:2]
    logits = CAT_SPEC.critic.apply(one_critic(state.critic, 0), batch.obs, batch.action)
    assert logits.shape == (BATCH, 7)
    np.testing.assert_allclose(
        np.asarray(logits), np_critic_outputs(state.critic, 0, batch.obs, batch.action), atol=1e-5
    )


def test_categorical_critic_loss_and_priorities_by_hand(categorical_case):
    """Target: the lowest-mean target critic's distribution at (s', mu'(s')) projected through r + discount z;
    loss: mean_b w_b sum_i CE(target, p_i); priority: max_i KL(target || p_i)."""
    from dpgkit.learn.categorical import project_categorical

    state, batch, _, loss, priorities = categorical_case[:5]
    next_a = np_actor(state.target_actor, batch.next_obs)
    next_probs = np.stack(
        [np_softmax(np_critic_outputs(state.target_critic, i, batch.next_obs, next_a)) for i in range(2)]
    )
    lowest = np.argmin(next_probs @ Z, axis=0)
    # each critic is the lower one for some example, so the choice matters
    assert len(set(lowest.tolist())) == 2
    chosen = next_probs[lowest, np.arange(BATCH)]
    target = np.asarray(
        project_categorical(jnp.asarray(chosen, jnp.float32), batch.reward, batch.discount, jnp.asarray(Z))
    )
    log_p = np.stack(
        [np.log(np_softmax(np_critic_outputs(state.critic, i, batch.obs, batch.action))) for i in range(2)]
    )
    cross_entropy = -np.sum(target * log_p, axis=-1)
    expected_loss = np.mean(np.asarray(batch.weight) * cross_entropy.sum(axis=0))
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy_term = np.where(target > 0, target * np.log(target), 0.0).sum(axis=-1)
    kl = entropy_term - np.sum(target * log_p, axis=-1)
    np.testing.assert_allclose(np.asarray(priorities), kl.max(axis=0), rtol=1e-4, atol=1e-6)
    assert np.all(np.asarray(priorities) >= 0.0)


def test_categorical_critic_loss_has_zero_gradient_wrt_actor(categorical_case):
    state, _, new, *_ = categorical_case
    g_actor = categorical_case[5]
    for leaf in leaves(g_actor):
        np.testing.assert_array_equal(leaf, np.zeros_like(leaf))
    assert trees_equal(new.actor, state.actor) and trees_equal(new.target_critic, state.target_critic)
    assert not trees_equal(new.critic, state.critic)


def test_categorical_actor_ascends_the_expected_value_of_critic_one(categorical_case):
    state, batch = categorical_case[:2]
    after, actor_loss = categorical_case[6:]
    mu = np_actor(state.actor, batch.obs)
    mean_q1 = np_softmax(np_critic_outputs(state.critic, 0, batch.obs, mu)) @ Z
    np.testing.assert_allclose(float(actor_loss), -mean_q1.mean(), rtol=1e-5)
    assert trees_equal(after.critic, state.critic) and not trees_equal(after.actor, state.actor)


def test_update_block_returns_one_priority_per_example(state0):
    for spec, first in ((SPEC, 0), (DDPG_SPEC, 0), (SPEC, 1)):
        state = fresh(spec)
        _, _, priorities = jit_update_block(
            spec, state, make_batch(11, lead=(2,) if first == 0 else (1,)), first
        )
        assert priorities.shape == ((2 if first == 0 else 1), BATCH)
        assert np.all(np.isfinite(priorities)) and np.all(np.asarray(priorities) >= 0.0)


# ---------------------------------------------------------------- NoisyNet actor


NOISY_SPEC = spec_of(tau=0.1, target_noise=0.0, explore="noisy")


def test_noisy_actor_step_uses_one_fresh_noise_sample_and_trains_sigma():
    from dpgkit.nets.layers import factorised_noise

    state = fresh(NOISY_SPEC)
    batch = make_batch(3)
    new, loss = jit_actor_step(NOISY_SPEC, state, batch)
    _, noise_key = jax.random.split(state.key)
    noise = factorised_noise(noise_key, (OBS_DIM, *HIDDEN, ACT_DIM))
    mu = NOISY_SPEC.actor.apply(state.actor, batch.obs, noise)
    q1 = np_critic(state.critic, 0, batch.obs, mu)
    np.testing.assert_allclose(float(loss), -q1.mean(), rtol=1e-5)
    assert not trees_equal(new.key, state.key)  # the next update draws new noise
    for layer, values in new.actor["params"].items():
        assert not np.array_equal(values["sigma_kernel"], state.actor["params"][layer]["sigma_kernel"]), layer
    # the target and the deterministic policy use the mean weights: no noise argument, no randomness
    np.testing.assert_array_equal(
        NOISY_SPEC.actor.apply(new.target_actor, batch.obs),
        NOISY_SPEC.actor.apply(new.target_actor, batch.obs),
    )


# ---------------------------------------------------------------- options: hard targets, dQ/da and gradient clipping


HARD_SPEC = spec_of(tau=0.1, target_update_every=3)


def test_hard_targets_copy_after_every_third_update_and_not_in_between():
    """Update u copies online to target when (u + 1) % 3 == 0; between copies the targets stay (no Polyak)."""
    state = with_perturbed_targets(fresh(HARD_SPEC))
    batches = make_batch(21, lead=(6,))
    single, online = state, []
    for u in range(6):  # one update per block: the lax.cond path
        before = (single.target_actor, single.target_critic)
        one = jax.tree_util.tree_map(lambda x, u=u: x[u : u + 1], batches)
        single, _, _ = jit_update_block(HARD_SPEC, single, one, u)
        copied = (u + 1) % 3 == 0
        assert trees_equal(single.target_actor, single.actor) == copied, u
        assert trees_equal(single.target_critic, single.critic) == copied, u
        if not copied:
            assert trees_equal((single.target_actor, single.target_critic), before), u
        online.append((single.actor, single.critic))
    # blocks of d = 2 updates (the grouped path): the copy of update 2 falls inside the block of updates 2 and 3
    grouped = state
    for first in (0, 2):
        block = jax.tree_util.tree_map(lambda x, f=first: x[f : f + 2], batches)
        grouped, _, _ = jit_update_block(HARD_SPEC, grouped, block, first)
        if first == 0:
            assert trees_equal(
                (grouped.target_actor, grouped.target_critic), (state.target_actor, state.target_critic)
            )
    for a, b in zip(leaves((grouped.target_actor, grouped.target_critic)), leaves(online[2]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not trees_equal(grouped.target_critic, grouped.critic)  # update 3 moved the critic after the copy


def test_dqda_clip_bounds_each_examples_action_gradient(state0):
    from dpgkit.learn.learner import actor_loss, first_q

    batch = make_batch(13)
    mu = SPEC.actor.apply(state0.actor, batch.obs)
    dqda = jax.grad(lambda a: jnp.sum(first_q(SPEC, state0.critic, batch.obs, a)))(mu)
    norms = np.linalg.norm(np.asarray(dqda), axis=-1)
    bound = float(np.median(norms))
    assert norms.max() > bound * 1.05  # some examples are clipped, some are not
    clipped = spec_of(tau=0.1, target_noise=0.0, critic_lr=1e-3, actor_lr=1e-3, dqda_clip=bound)
    grad = np.asarray(jax.grad(lambda a: actor_loss(clipped, state0.critic, batch.obs, a))(mu))
    plain = np.asarray(jax.grad(lambda a: actor_loss(SPEC, state0.critic, batch.obs, a))(mu))
    # -mean Q: the gradient -dQ/da / B
    np.testing.assert_allclose(plain, -np.asarray(dqda) / BATCH, rtol=1e-5, atol=1e-8)
    per_example = BATCH * np.linalg.norm(grad, axis=-1)
    assert np.all(per_example <= bound * (1 + 1e-5))
    small = norms <= bound
    # unclipped where already inside the ball
    np.testing.assert_allclose(grad[small], plain[small], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(per_example[~small], bound, rtol=1e-5)  # on the ball's surface where clipped
    direction = grad[~small] / np.linalg.norm(grad[~small], axis=-1, keepdims=True)
    plain_direction = plain[~small] / np.linalg.norm(plain[~small], axis=-1, keepdims=True)
    np.testing.assert_allclose(direction, plain_direction, rtol=1e-4, atol=1e-6)


def adam_first_moment_norm(opt_state) -> float:
    """The global norm of Adam's first moment mu, which after one step is (1 - b1) times the gradient it saw."""
    return float(optax.tree.norm(optax.tree_utils.tree_get(opt_state, "mu")))


def test_max_grad_norm_clips_both_networks_gradients():
    limit = 1e-3
    spec = spec_of(tau=0.1, target_noise=0.0, max_grad_norm=limit)
    huge = make_batch(14).reward * 1e3  # huge TD errors, huge critic gradients
    batch = make_batch(14)._replace(reward=huge)
    norms = {}
    for name, s in (("clipped", spec), ("plain", spec_of(tau=0.1, target_noise=0.0))):
        state = fresh(s)
        after_critic = jax.jit(critic_step, static_argnums=0)(s, state, batch, jax.random.PRNGKey(0))[0]
        after_actor = jax.jit(actor_step, static_argnums=0)(s, after_critic, batch)[0]
        norms[name] = [
            adam_first_moment_norm(after_actor.critic_opt),
            adam_first_moment_norm(after_actor.actor_opt),
        ]
    # mu = (1 - 0.9) g after one step
    assert all(n <= 0.1 * limit * (1 + 1e-5) for n in norms["clipped"])
    assert all(n > 0.1 * limit * 2 for n in norms["plain"]), norms


# ---------------------------------------------------------------- options: the layernorm torso


def layer_norm(x, eps=1e-6):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def test_layernorm_torso_normalizes_the_first_layer_of_both_networks():
    spec = spec_of(torso="layernorm")
    state = fresh(spec)
    batch = make_batch(15)
    for params in (state.actor, one_critic(state.critic, 0)):
        names = sorted(params["params"])
        assert names == ["Dense_0", "Dense_1", "Dense_2", "LayerNorm_0"]
    assert "LayerNorm_0" not in fresh(SPEC).actor["params"]
    layers = np_layers({"params": {k: v for k, v in state.actor["params"].items() if k.startswith("Dense")}})
    (w0, b0), (w1, b1), (w2, b2) = layers
    x = np.tanh(layer_norm(np.asarray(batch.obs, np.float64) @ w0 + b0))  # gain 1, bias 0 at init
    expected = np.tanh(elu(x @ w1 + b1) @ w2 + b2)
    np.testing.assert_allclose(np.asarray(spec.actor.apply(state.actor, batch.obs)), expected, atol=1e-5)
    critic = one_critic(state.critic, 0)
    cl = np_layers({"params": {k: v for k, v in critic["params"].items() if k.startswith("Dense")}})
    h = np.concatenate([np.asarray(batch.obs), np.asarray(batch.action)], -1) @ cl[0][0] + cl[0][1]
    q = elu(np.tanh(layer_norm(h)) @ cl[1][0] + cl[1][1]) @ cl[2][0] + cl[2][1]
    np.testing.assert_allclose(
        np.asarray(spec.critic.apply(critic, batch.obs, batch.action)), q[..., 0], atol=1e-5
    )


def test_actor_and_critic_hidden_sizes_differ():
    spec = spec_of(actor_hidden=(5,), critic_hidden=(7, 4, 3))
    shapes = jax.eval_shape(
        lambda k: init_learner(spec, k, jnp.zeros((BATCH, OBS_DIM))), jax.random.PRNGKey(0)
    )
    assert shapes.actor["params"]["Dense_0"]["kernel"].shape == (OBS_DIM, 5)
    assert shapes.actor["params"]["Dense_1"]["kernel"].shape == (5, ACT_DIM)
    assert [shapes.critic["params"][f"Dense_{i}"]["kernel"].shape[-1] for i in range(4)] == [7, 4, 3, 1]


def test_preactivation_l2_adds_the_mean_square_of_the_pre_tanh_outputs_to_the_actor_loss(state0):
    batch = make_batch(17)
    l2 = 0.3
    penalised = spec_of(tau=0.1, target_noise=0.0, critic_lr=1e-3, actor_lr=1e-3, preactivation_l2=l2)
    _, plain_loss = jit_actor_step(SPEC, state0, batch)
    _, loss = jit_actor_step(penalised, state0, batch)
    layers = np_layers(state0.actor)
    x = np.asarray(batch.obs, np.float64)
    for w, b in layers[:-1]:
        x = relu(x @ w + b)
    preactivation = x @ layers[-1][0] + layers[-1][1]
    np.testing.assert_allclose(np.tanh(preactivation), SPEC.actor.apply(state0.actor, batch.obs), rtol=1e-5)
    np.testing.assert_allclose(float(loss) - float(plain_loss), l2 * np.mean(preactivation**2), rtol=1e-4)
    moved = jit_actor_step(penalised, state0, batch)[0].actor
    assert not trees_equal(moved, jit_actor_step(SPEC, state0, batch)[0].actor)  # the penalty's gradient acts
