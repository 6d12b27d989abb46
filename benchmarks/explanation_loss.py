"""Cost of a training step with an explanation penalty, as a multiple of a plain step.

The demo CNN (small_cnn_bn 16-32-64-96) at 32×32, batch 32, AdamW — configs/right_reasons.py's
setting — timed step by step in turn (so load drifts hit every variant alike), median of
`--repeats` steps, on 1 core and on 2 cores.

  python benchmarks/explanation_loss.py            # prints ms/step and the multiple of plain
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import common  # pylint: disable=wrong-import-position

PENALTIES = {
    "plain": None,
    "input_gradient": dict(kind="input_gradient", weight=1.0, layer="", target="label"),
    "input_gradient (each_log_prob)": dict(kind="input_gradient", weight=1.0, layer="",
                                           target="each_log_prob"),
    "input_gradient (each_log_prob_sampled)": dict(kind="input_gradient", weight=1.0, layer="",
                                                   target="each_log_prob_sampled"),
    "grad_cam (block4_conv1)": dict(kind="grad_cam", weight=1.0, layer="block4_conv1",
                                    target="label"),
    "layer_cam (block2_conv1)": dict(kind="layer_cam", weight=1.0, layer="block2_conv1",
                                     target="label"),
    "integrated_gradients": dict(kind="integrated_gradients", weight=1.0, layer="",
                                 target="label", normalize=True),
}


def worker(args):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  import cnnviz_jax as cj  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.data import layout  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import from_config  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.train import mesh as mesh_lib  # pylint: disable=import-outside-toplevel
  from configs import default  # pylint: disable=import-outside-toplevel

  print(f"{len(os.sched_getaffinity(0))} core(s), batch {args.batch}, load average "
        f"{os.getloadavg()[0]:.2f}", flush=True)
  rs = np.random.RandomState(0)
  batch = {"image": jnp.asarray(rs.rand(args.batch, 32, 32, 3), jnp.float32),
           "label": jnp.asarray(rs.randint(0, 5, args.batch), jnp.int32),
           "object_mask": jnp.asarray(rs.rand(args.batch, 32, 32) > 0.8, jnp.float32)}
  model = cj.models.create("small_cnn_bn", num_classes=5, filters=(16, 32, 64, 96))
  variables = jax.jit(model.init)(jax.random.key(0), batch["image"][:1])
  stage = default.stage(optimizer="adamw", lr=3e-3, schedule="constant")
  mask = jax.tree.map(lambda _: True, variables["params"])
  mesh = mesh_lib.make_mesh()
  timed = {}
  for name, spec in PENALTIES.items():
    config = default.get_config()
    if spec:
      config.explanation_loss.update(spec)
    fresh = jax.tree.map(jnp.array, variables)  # a copy per variant: the step donates it
    state, step = from_config.stage_state_and_step(
        config, stage, model, fresh, mask, first_step=0, rng=jax.random.key(1),
        steps_per_epoch=1, shardings=(mesh_lib.replicated(mesh), layout.batch_sharding(mesh)))
    holder = {"state": state}

    def run(step=step, holder=holder):
      holder["state"], metrics = step(holder["state"], batch)
      metrics["loss"].block_until_ready()

    timed[name] = run
  seconds = common.alternate(timed, args.repeats, warmup=3)
  for name, s in seconds.items():
    print(f"  {name:38s} {1e3 * s:7.1f} ms/step  {s / seconds['plain']:5.2f}× plain")
  print(f"load average after: {os.getloadavg()[0]:.2f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--worker", action="store_true")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=30)
  args, _ = parser.parse_known_args()
  if args.worker:
    worker(args)
  else:
    common.run_per_core_count(os.path.abspath(__file__),
                              ["--batch", str(args.batch), "--repeats", str(args.repeats)])


if __name__ == "__main__":
  main()
