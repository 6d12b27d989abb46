"""config.model.dtype=bfloat16 end to end: the demo trains as well as in float32, and the
report builds the bfloat16 model it trained."""
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax import explain
from cnnviz_jax.report import trained_run
from cnnviz_jax.train import loop
from configs import demo


@pytest.mark.slow
def test_bfloat16_demo_is_within_a_point_of_float32_and_reaches_the_report(tmp_path, data_dir):
  accuracy = {}
  for dtype in ("float32", "bfloat16"):
    config = demo.get_config()
    config.data.data_dir = data_dir
    config.model.dtype = dtype
    accuracy[dtype] = loop.train_and_evaluate(config, tmp_path / dtype)["splits"]["test"][
        "accuracy"]
  assert accuracy["float32"] >= 0.95
  assert abs(accuracy["bfloat16"] - accuracy["float32"]) <= 0.01, accuracy

  run = trained_run.load_run(tmp_path / "bfloat16")
  assert run.model.dtype == jnp.bfloat16
  # the report's model computes in bfloat16, and the explainers run on it
  x = jnp.zeros((2, 32, 32, 3))
  assert explain.activations(run.model, run.variables, x, ["block4_conv1"])[
      "block4_conv1"].dtype == jnp.bfloat16
  cam = explain.grad_cam(run.model, run.variables, x, "block4_conv1")
  assert cam.shape == (2, 8, 8) and np.all(np.isfinite(np.asarray(cam, np.float32)))
