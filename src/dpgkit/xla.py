"""jax.jit with the XLA options dpgkit's networks compile best under.

XLA's CPU backend (jaxlib 0.10) hands each convolution to YNNPACK on its own, with the ReLU and bias around it left
to XLA: the Nature CNN's forward and gradient then take 2.5-3x as long as with XLA's own convolutions
(benchmarks/RESULTS.md, "Pixel TD3"). Networks with convolutions compile with YNNPACK for the matmuls only; the
others with XLA's defaults, so their numbers stay as they were. A jaxlib without the option uses its defaults.
"""

from __future__ import annotations

import functools

import jax

FAST_CONVOLUTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
"""YNNPACK for each matmul, not for convolutions (the option replaces XLA's whole list of YNNPACK fusions)."""


@functools.cache
def compiler_options() -> dict[str, str]:
    """FAST_CONVOLUTIONS where this jax and jaxlib take them, else none."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=FAST_CONVOLUTIONS)(0.0)
    except (TypeError, ValueError, jax.errors.JaxRuntimeError):
        return {}
    return FAST_CONVOLUTIONS


def jit(fn, convolutions: bool, **kwargs):
    """jax.jit(fn), compiled with compiler_options() where fn runs convolutions."""
    return jax.jit(fn, compiler_options=compiler_options() if convolutions else None, **kwargs)
