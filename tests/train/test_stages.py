"""Multi-stage schedules (seed 002), early stopping, and what freezing saves."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
import runs
from cnnviz_jax.data import layout
from cnnviz_jax.train import freeze, from_config, loop
from cnnviz_jax.train import mesh as mesh_lib
from configs import default


def test_two_stages_head_then_everything_with_cyclic_lr(tmp_path, data_dir):
  config = runs.tiny_config(data_dir)
  config.stages = [
      default.stage(epochs=1, optimizer="adam", lr=1e-2, schedule="constant", freeze=("^(?!head/)",)),
      default.stage(epochs=2, optimizer="radam", schedule="cyclic", lr=3e-3)]
  config.stages[1].schedule.update(min_lr=5e-8, max_lr=3e-3, step_size_epochs=1.0)
  out = loop.train_and_evaluate(config, tmp_path)
  history = runs.history(tmp_path)
  assert [(h["stage"], h["epoch"], h["step"]) for h in history] == [(0, 0, 8), (1, 0, 16), (1, 1, 24)]
  np.testing.assert_allclose(history[0]["lr"], 1e-2, rtol=1e-6)
  # triangular over 8-step half cycles; `lr` is the rate of each epoch's last update: stage
  # step 7 (7/8 of the way up) and step 15 (1/8 of the way, coming down)
  np.testing.assert_allclose(history[1]["lr"], 5e-8 + (3e-3 - 5e-8) * 7 / 8, rtol=1e-5)
  np.testing.assert_allclose(history[2]["lr"], 5e-8 + (3e-3 - 5e-8) / 8, rtol=1e-5)
  assert out["num_steps"] == 24


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path, data_dir):
  config = runs.tiny_config(data_dir, epochs=6)
  # "best" = highest val loss, which (as loss falls) is epoch 0: stop after patience 2
  config.early_stopping.update(enabled=True, metric="loss", mode="max", patience=2)
  out = loop.train_and_evaluate(config, tmp_path)
  history = runs.history(tmp_path)
  assert len(history) == 3  # epochs 0, 1, 2; no improvement in 1 and 2
  np.testing.assert_allclose(out["splits"]["validation"]["loss"], history[0]["val_loss"], rtol=1e-5)
  assert [p.name for p in (tmp_path / "best").iterdir()] == [str(history[0]["step"])]


def _step_flops(model, x, mask):
  variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes: nothing to draw
  stage = default.stage(optimizer="sgd", lr=0.01, schedule="constant")
  mesh = mesh_lib.make_mesh()
  built = {}

  def state_shapes(v):  # traced: the loop's state as shapes only, and its step beside them
    state, built["step"] = from_config.stage_state_and_step(
        default.get_config(), stage, model, v, mask(variables), first_step=0,
        rng=jax.random.key(0), steps_per_epoch=1,
        shardings=(mesh_lib.replicated(mesh), layout.batch_sharding(mesh)))
    return state
  state = jax.eval_shape(state_shapes, variables)
  batch = {"image": x, "label": jnp.zeros(x.shape[0], jnp.int32)}
  return built["step"].lower(state, batch).compile().cost_analysis()["flops"]


@pytest.mark.slow
def test_freezing_90_percent_of_resnet50_skips_the_backward_below_it():
  """No gradient is computed below the lowest trainable layer: the step's FLOPs fall
  from ≈ 3 forwards (forward + input and weight gradients) towards ≈ 1 forward."""
  model = cj.models.create("resnet50", num_classes=10)
  x = jnp.zeros((2, 64, 64, 3))
  order = lambda v: cj.models.module_order(model, v, x)  # noqa: E731
  full = _step_flops(model, x, lambda v: jax.tree.map(lambda _: True, v["params"]))
  frozen = _step_flops(model, x, lambda v: freeze.trainable_mask(
      v["params"], freeze_fraction=0.9, module_order=order(v)))
  head_only = _step_flops(model, x, lambda v: freeze.trainable_mask(v["params"], ("^(?!head/)",)))
  forward = jax.jit(lambda v, x: model.apply(v, x)).lower(
      jax.eval_shape(model.init, jax.random.key(0), x), x).compile().cost_analysis()["flops"]
  assert 2.5 < full / forward < 3.5
  assert frozen / full < 0.5
  assert head_only / forward < 1.05  # the backward stops at the head
