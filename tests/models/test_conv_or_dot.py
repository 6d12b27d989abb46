"""layers.conv_or_dot: 1×1 convolutions as a channel dot give lax's convolution, values and
gradients; other kernels go to lax unchanged."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.models import layers


@pytest.mark.slow
@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
@pytest.mark.parametrize("padding", ["VALID", ((0, 0), (0, 0))])
def test_pointwise_equals_lax_convolution_and_its_gradients(strides, padding):
  x = jax.random.normal(jax.random.key(0), (2, 9, 7, 5))
  kernel = jax.random.normal(jax.random.key(1), (1, 1, 5, 6))
  numbers = ("NHWC", "HWIO", "NHWC")

  def ours(x, kernel):
    dimension_numbers = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, numbers)
    return layers.conv_or_dot(x, kernel, strides, padding, dimension_numbers=dimension_numbers)

  def reference(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=numbers)

  np.testing.assert_allclose(ours(x, kernel), reference(x, kernel), rtol=1e-5, atol=1e-5)
  cotangent = jax.random.normal(jax.random.key(2), reference(x, kernel).shape)
  grads = [jax.vjp(f, x, kernel)[1](cotangent) for f in (ours, reference)]
  for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  # forward mode too (its own rule): both tangents, and each alone (the other one a symbolic
  # zero, as in an input gradient)
  dx, dkernel = jax.random.normal(jax.random.key(3), x.shape), jax.random.normal(
      jax.random.key(4), kernel.shape)
  for f_of, primal, tangent in (
      (lambda f: lambda x, k: f(x, k), (x, kernel), (dx, dkernel)),
      (lambda f: lambda x: f(x, kernel), (x,), (dx,)),
      (lambda f: lambda k: f(x, k), (kernel,), (dkernel,))):
    got, want = (jax.jvp(f_of(f), primal, tangent)[1] for f in (ours, reference))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # and the gradient of a gradient (the explanation penalties differentiate input gradients)
  second = [jax.grad(lambda k, f=f: jnp.sum(jax.grad(lambda x: jnp.sum(jnp.sin(f(x, k))))(x)
                                             ** 2))(kernel) for f in (ours, reference)]
  np.testing.assert_allclose(*second, rtol=1e-4, atol=1e-4)


def test_other_layouts_go_to_lax():
  # kernels whose first two dims are 1 in another layout: a 3x3 OIHW kernel on one channel,
  # the same shapes that a channels-last dot would silently accept
  x = jax.random.normal(jax.random.key(0), (2, 1, 9, 3))
  kernel = jax.random.normal(jax.random.key(1), (1, 1, 3, 3))
  for dimension_numbers in (None, ("NCHW", "OIHW", "NCHW")):
    numbers = dimension_numbers and jax.lax.conv_dimension_numbers(x.shape, kernel.shape,
                                                                   dimension_numbers)
    got = layers.conv_or_dot(x, kernel, (1, 1), "VALID", dimension_numbers=numbers)
    assert jnp.array_equal(got, jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                                             dimension_numbers=numbers))


def test_other_kernels_are_lax_convolution_bit_for_bit():
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
  for kernel_size, padding in (((3, 3), ((1, 1), (1, 1))), ((1, 1), ((1, 1), (1, 1)))):
    plain = nn.Conv(4, kernel_size, padding=padding)
    routed = nn.Conv(4, kernel_size, padding=padding, conv_general_dilated=layers.conv_or_dot)
    variables = plain.init(jax.random.key(1), x)
    assert jnp.array_equal(plain.apply(variables, x), routed.apply(variables, x))


def test_off_the_cpu_pointwise_stays_lax_convolution(monkeypatch):
  """The dot is an XLA-CPU measure (XLA-GPU's Triton GEMM aborted compiling its gradient):
  traced for another backend, a 1×1 convolution is lax's, bit for bit."""
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
  plain = nn.Conv(4, (1, 1), strides=2, padding="VALID")
  routed = nn.Conv(4, (1, 1), strides=2, padding="VALID", conv_general_dilated=layers.conv_or_dot)
  variables = plain.init(jax.random.key(1), x)
  on_cpu = str(jax.make_jaxpr(routed.apply)(variables, x))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  off_cpu = str(jax.make_jaxpr(routed.apply)(variables, x))
  assert "dot_general" in on_cpu and "conv_general_dilated" not in on_cpu
  assert "conv_general_dilated" in off_cpu and "dot_general" not in off_cpu
  assert jnp.array_equal(plain.apply(variables, x), routed.apply(variables, x))
