"""valid_conv's hand-written gradients against lax's, and the XLA options of networks with convolutions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpgkit import xla
from dpgkit.nets.torsos import NHWC, valid_conv

SHAPES = [  # (rows, columns, kernel, stride, channels in, channels out)
    (64, 64, 8, 4, 9, 32),  # the Nature CNN's layers on 64x64 images
    (15, 15, 4, 2, 32, 64),
    (6, 6, 3, 1, 64, 64),
    (31, 32, 3, 2, 16, 16),  # rows and columns that leave a remainder, not square
    (17, 20, 5, 3, 2, 4),
    (10, 13, 1, 1, 2, 3),  # a 1x1 kernel
    (11, 14, 2, 5, 2, 3),  # a stride above the kernel, rows it skips
    (8, 9, 8, 4, 3, 2),  # one output pixel
]


def lax_conv(x, kernel, stride):
    """The reference: lax's VALID convolution, differentiated by JAX."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=NHWC)


@pytest.mark.parametrize(("rows", "cols", "size", "stride", "cin", "cout"), SHAPES)
def test_valid_conv_values_and_gradients_equal_lax(rows, cols, size, stride, cin, cout):
    rng = np.random.default_rng(rows * cols)
    x = jnp.asarray(rng.normal(size=(3, rows, cols, cin)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(size, size, cin, cout)), jnp.float32)

    def loss(conv):
        return lambda x, kernel: jnp.sum(jnp.sin(conv(x, kernel, stride)))

    np.testing.assert_array_equal(valid_conv(x, kernel, stride), lax_conv(x, kernel, stride))
    got = jax.grad(loss(valid_conv), (0, 1))(x, kernel)
    want = jax.grad(loss(lax_conv), (0, 1))(x, kernel)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(jnp.abs(w).max()))


def test_valid_conv_gradients_vmapped_over_seeds_equal_lax():
    rng = np.random.default_rng(1)
    x = jnp.asarray(
        rng.normal(size=(2, 3, 15, 15, 4)), jnp.float32
    )  # (seeds, batch, ...): kernels batched too
    kernels = jnp.asarray(rng.normal(size=(2, 4, 4, 4, 3)), jnp.float32)

    def grads(conv):
        return jax.vmap(jax.grad(lambda x, k: jnp.sum(jnp.sin(conv(x, k, 2))), (0, 1)))(x, kernels)

    for g, w in zip(grads(valid_conv), grads(lax_conv), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(jnp.abs(w).max()))


def test_valid_conv_gradient_inside_a_scan_equals_outside():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 15, 15, 4)), jnp.float32)
    kernel = jnp.ones((4, 4, 4, 3)) * 0.1

    def grad(kernel):
        return jax.grad(lambda k: jnp.sum(valid_conv(x, k, 2) ** 2))(kernel)

    scanned = jax.lax.scan(lambda c, _: (c, grad(c)), kernel, None, length=2)[1]
    np.testing.assert_allclose(scanned[0], grad(kernel), rtol=1e-6)


def test_networks_with_convolutions_compile_with_the_options_and_others_without():
    def conv(x):
        return jax.nn.relu(lax_conv(x, jnp.ones((8, 8, 9, 32)), 4))

    x = jnp.ones((16, 64, 64, 9))
    np.testing.assert_array_equal(xla.jit(conv, convolutions=False)(x), xla.jit(conv, convolutions=True)(x))
    if not xla.compiler_options():
        pytest.skip("this jaxlib does not take the option")

    def library_fusions(jitted) -> int:
        """YNNPACK fusions in the compiled program (XLA's default sends each convolution to one)."""
        return jitted.lower(x).compile().as_text().count("__ynn_fusion")

    if library_fusions(jax.jit(conv)) == 0:
        pytest.skip("this jaxlib does not hand convolutions to YNNPACK")
    assert library_fusions(xla.jit(conv, convolutions=False)) == library_fusions(jax.jit(conv))
    assert library_fusions(xla.jit(conv, convolutions=True)) == 0
