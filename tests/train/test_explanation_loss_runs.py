"""The explanation penalty under the training machinery: 8 sharded devices equal 1, stages
with freezing resume exactly, and the command line trains with a CAM penalty."""
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnnviz_jax as cj
import helpers
import runs
from cnnviz_jax.train import from_config, loop
from configs import default

_SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh
    import cnnviz_jax as cj
    from cnnviz_jax.data import layout
    from cnnviz_jax.train import from_config
    from cnnviz_jax.train import mesh as mesh_lib
    from configs import default
    assert jax.device_count() == 8
    rs = np.random.RandomState(0)
    batch = {"image": jnp.asarray(rs.rand(16, 16, 16, 3), jnp.float32),
             "label": jnp.asarray(rs.randint(0, 3, 16), jnp.int32),
             "object_mask": jnp.asarray(rs.rand(16, 16, 16) > 0.7, jnp.float32)}
    model = cj.models.create("small_cnn_bn", num_classes=3, filters=(4, 8, 8, 8))
    variables = cj.models.initialize(model, jax.random.key(0), batch["image"])
    stage = default.stage(optimizer="sgd", lr=0.1, schedule="constant")
    stage.optimizer.momentum = 0.0
    mask = jax.tree.map(lambda _: True, variables["params"])
    for kind, layer in (("input_gradient", ""), ("integrated_gradients", ""),
                        ("grad_cam", "block2_conv1")):
      config = default.get_config()
      config.explanation_loss.update(kind=kind, weight=1.0, layer=layer, target="label",
                                     normalize=True)
      out = []
      for devices in (jax.devices()[:1], jax.devices()):
        mesh = Mesh(np.asarray(devices), (mesh_lib.DATA_AXIS,))
        shardings = (mesh_lib.replicated(mesh), layout.batch_sharding(mesh))
        fresh = jax.tree.map(jnp.array, variables)  # copies: the step donates its state
        state, jitted = from_config.stage_state_and_step(
            config, stage, model, fresh, mask, first_step=0, rng=jax.random.key(1),
            steps_per_epoch=1, shardings=shardings)
        for _ in range(2):
          state, metrics = jitted(state, jax.device_put(batch, shardings[1]))
        out.append((jax.device_get(state.params), float(metrics["explanation_loss"])))
      assert out[0][1] > 0, kind
      np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, err_msg=kind)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6,
                                                           err_msg=kind), out[0][0], out[1][0])
      print(kind, "ok", flush=True)
""")


@pytest.mark.slow
def test_a_penalized_step_on_8_sharded_devices_equals_one_device():
  result = helpers.python("-c", _SHARDED, env=helpers.eight_devices(), timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert result.stdout.count(" ok") == 3, result.stdout


def _two_stage_config(data_dir, second_epochs):
  config = runs.tiny_config(data_dir, epochs=1)
  config.data.shapes.decoy = 2
  config.explanation_loss.update(kind="input_gradient", weight=1.0, target="label",
                                 normalize=True)
  config.stages = [  # head only, then everything with BatchNorm frozen: both with the penalty
      default.stage(epochs=1, optimizer="sgd", lr=0.05, schedule="constant",
                    freeze=default.HEAD_ONLY),
      default.stage(epochs=second_epochs, optimizer="sgd", lr=0.05, schedule="constant",
                    freeze_bn=True)]
  config.checkpoint_keep = 3  # keep the end of stage 0 (step 8) to check the freezing
  return config


@pytest.mark.slow
def test_stages_with_freezing_and_the_penalty_resume_exactly(tmp_path, data_dir):
  config = _two_stage_config(data_dir, 2)
  complete = tmp_path / "complete"
  loop.train_and_evaluate(config, complete)
  interrupted = tmp_path / "interrupted"  # stopped after stage 1's first epoch, then resumed
  loop.train_and_evaluate(_two_stage_config(data_dir, 1), interrupted)
  loop.train_and_evaluate(_two_stage_config(data_dir, 2), interrupted, config_change="allow")
  history = runs.history(interrupted)
  assert [(h["stage"], h["epoch"], h["step"]) for h in history] == [(0, 0, 8), (1, 0, 16),
                                                                    (1, 1, 24)]
  for a, b in zip(history, runs.history(complete)):
    assert {k: v for k, v in a.items() if k != "epoch_seconds"} == \
        {k: v for k, v in b.items() if k != "epoch_seconds"}
  end, resumed = runs.final_state(complete), runs.final_state(interrupted)
  jax.tree.map(np.testing.assert_array_equal, resumed["params"], end["params"])
  # freezing held with the penalty on: stage 0 moved only the head, stage 1 no BN statistic
  model = cj.models.create("small_cnn_bn", num_classes=3, filters=(8, 8, 16, 16))
  initial = from_config.initial_variables(
      config, model, jax.ShapeDtypeStruct((32, 32, 32, 3), jnp.float32))
  stage0 = runs.state_at(complete, 8)
  for name in stage0["params"]:
    same = jax.tree.map(np.array_equal, stage0["params"][name], initial["params"][name])
    assert all(jax.tree.leaves(same)) == (name != "head"), name
  jax.tree.map(np.testing.assert_array_equal, end["batch_stats"], stage0["batch_stats"])


@pytest.mark.slow
def test_the_command_line_trains_with_a_cam_penalty(tmp_path, data_dir):
  """Validating a CAM penalty traces the model (its layer's name), which starts JAX: the run
  must join its (one-process) distributed runtime before that."""
  result = runs.run_main(tmp_path / "w", data_dir, *runs.tiny_flags(1),
                         "--config.explanation_loss.kind=grad_cam",
                         "--config.explanation_loss.layer=block2_conv1")
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert runs.history(tmp_path / "w")[-1]["step"] == 8  # 256 images, batch 32, one epoch
