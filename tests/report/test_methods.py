"""Every method the explain-images command offers (--methods) runs on a small net and gives
a finite map of its kind's shape: CAMs (B, h, w) at the layer, the rest (B, H, W, 3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
from cnnviz_jax.report import images


@pytest.fixture(scope="module")
def net():
  model = cj.models.create("small_cnn_bn", num_classes=4, filters=(4, 8, 8, 8))
  x = jnp.asarray(np.random.RandomState(0).rand(2, 16, 16, 3), jnp.float32)
  return model, cj.models.initialize(model, jax.random.key(0), x), x


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(images.METHODS))
def test_every_report_method_gives_a_finite_map(net, method):
  model, variables, x = net
  out = np.asarray(images._run(method, model, "block3_conv1", variables, x,  # pylint: disable=protected-access
                               jnp.asarray([1, 2])))
  kind = images.METHODS[method][1]
  shape = {"cam": (2, 4, 4), "pixels": (2, 16, 16, 3)}[kind]
  assert out.shape == ((2, 16, 16) if method == "full_grad" else shape), out.shape
  assert np.isfinite(out).all()


def test_an_unknown_method_lists_the_valid_ones():
  with pytest.raises(images.ReportError, match="valid methods: .*occlusion"):
    images.check_methods(["nope"])
