"""Deletion/insertion AUC (Petsiuk et al. 2018) of Grad-CAM maps on ResNet-50, and
receptive field + max-activating patches over synthetic shapes: cnnviz_jax vs the
straightforward way.

  python benchmarks/faithfulness.py                          # the issue's sizes (slow on CPU)
  python benchmarks/faithfulness.py --images 8 --steps 10    # a quick look

Part 1 — the same ResNet-50 weights (torchvision, random init), images and Grad-CAM maps:
ours is one jitted call (all images, `steps_per_batch` steps per model call); the
reference is a PyTorch loop over steps that rebuilds the deleted / inserted batch each
step, as RISE's batched `CausalMetric` does (Quantus and Xplique are not installed here).
Part 2 — small_cnn_bn over N shapes images: our batched `max_activating_patches` (the
receptive field from the traced graph) vs seed 004's way, a forward per image, an argmax
per channel and a crop per patch.
"""
import argparse
import functools
import os
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def _timed(fn, repeats: int) -> float:
  fn()  # warm-up / compile
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def faithfulness(args):
  import jax
  import jax.numpy as jnp
  import numpy as np
  import torch
  import torchvision

  import cnnviz_jax as cj
  from cnnviz_jax.explain.faithfulness import deletion_insertion, pixel_ranks

  torch.set_num_threads(len(os.sched_getaffinity(0)))
  reference = torchvision.models.resnet50(weights=None).eval()
  variables, _ = cj.weights.from_torchvision("resnet50", reference.state_dict())
  model = cj.models.create("resnet50")
  x = jnp.asarray(np.random.RandomState(0).randn(args.images, args.size, args.size, 3),
                  jnp.float32)
  heat = jax.jit(functools.partial(cj.explain.grad_cam, model, layer="layer4"))(variables, x)
  target = jnp.argmax(model.apply(variables, x), -1)
  metric = jax.jit(functools.partial(deletion_insertion, model, steps=args.steps,
                                     steps_per_batch=args.steps_per_batch))
  ours = lambda: jax.block_until_ready(metric(variables, x, heat, target))

  # the reference gets the same ranks and blurred canvas, and does the rest itself
  ranks = torch.from_numpy(np.array(pixel_ranks(heat, (args.size, args.size))))
  blurred = torch.from_numpy(np.array(cj.explain.gaussian_blur(x, 5.0)).transpose(0, 3, 1, 2))
  xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
  tt = torch.from_numpy(np.asarray(target))

  def theirs():
    deletion, insertion = [], []
    pixels = args.size * args.size
    with torch.inference_mode():
      for t in range(args.steps + 1):
        changed = (ranks < round(t * pixels / args.steps))[:, None]
        for curve, batch in ((deletion, torch.where(changed, 0.0, xt)),
                             (insertion, torch.where(changed, xt, blurred))):
          probs = torch.softmax(reference(batch), -1)
          curve.append(probs[torch.arange(len(tt)), tt])
    auc = lambda c: ((c[1:] + c[:-1]) / 2).mean(0)
    return auc(torch.stack(deletion)), auc(torch.stack(insertion))

  result, (d_ref, i_ref) = metric(variables, x, heat, target), theirs()
  agree = max(float(np.abs(np.asarray(result.deletion_auc) - d_ref.numpy()).max()),
              float(np.abs(np.asarray(result.insertion_auc) - i_ref.numpy()).max()))
  t_ours, t_theirs = _timed(ours, args.repeats), _timed(theirs, args.repeats)
  forwards = 2 * args.images * (args.steps + 1)
  print(f"deletion+insertion, ResNet-50 {args.size}px, {args.images} images x {args.steps} "
        f"steps ({forwards} forwards): cnnviz_jax {t_ours:.1f} s ({forwards / t_ours:.1f} img/s)"
        f", PyTorch loop {t_theirs:.1f} s ({forwards / t_theirs:.1f} img/s), ratio "
        f"{t_theirs / t_ours:.2f}x; max |AUC difference| {agree:.1e}")


def patches(args):
  import jax
  import jax.numpy as jnp
  import numpy as np

  import cnnviz_jax as cj
  from cnnviz_jax.data import shapes_render
  from cnnviz_jax.explain.patches import max_activating_patches
  from cnnviz_jax.explain.receptive_field import receptive_field

  model = cj.models.create("small_cnn_bn", num_classes=5)
  images, _, _ = shapes_render.render(0, args.patch_images, 32)
  x = images.astype(np.float32) / 255.0
  variables = model.init(jax.random.key(0), x[:1])
  layer, k = "block4_conv1", 9
  t_rf = _timed(lambda: receptive_field(model, layer, variables), args.repeats)
  ours = lambda: jax.block_until_ready(max_activating_patches(model, variables, x, layer, k=k))

  forward = jax.jit(lambda v, xb: cj.models.apply_with_taps(model, v, xb, [layer])[1][layer])

  def theirs():  # seed 004's loop: one image at a time, then crop the top units with numpy
    acts = np.stack([np.asarray(forward(variables, x[i:i + 1]))[0] for i in range(len(x))])
    field = receptive_field(model, layer, variables)
    padded = np.pad(x, [(0, 0)] + [(s, s) for s in field.size] + [(0, 0)])
    crops = []
    for c in range(acts.shape[-1]):
      for flat in np.argsort(-acts[..., c].ravel(), kind="stable")[:k]:
        i, r, col = np.unravel_index(flat, acts.shape[:3])
        r0 = r * field.stride[0] - field.padding[0] + field.size[0]
        c0 = col * field.stride[1] - field.padding[1] + field.size[1]
        crops.append(padded[i, r0:r0 + field.size[0], c0:c0 + field.size[1]])
    return np.stack(crops)

  np.testing.assert_array_equal(np.asarray(max_activating_patches(
      model, variables, x, layer, k=k).images).reshape(-1, 26, 26, 3), theirs())
  t_ours, t_theirs = _timed(ours, args.repeats), _timed(theirs, args.repeats)
  print(f"receptive_field({layer}) (trace, no compute): {t_rf * 1e3:.0f} ms")
  print(f"max-activating patches, small_cnn_bn {layer}, 96 channels x top-{k} over "
        f"{args.patch_images} images: cnnviz_jax {t_ours:.2f} s, per-image loop "
        f"{t_theirs:.2f} s, ratio {t_theirs / t_ours:.1f}x (same patches)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", type=int, default=64)
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--steps-per-batch", type=int, default=1)
  parser.add_argument("--patch-images", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=1)
  parser.add_argument("--skip", choices=("faithfulness", "patches"), default=None)
  args = parser.parse_args()
  print(f"{len(os.sched_getaffinity(0))} core(s); best of {args.repeats} after a warm-up")
  # torch before cnnviz_jax.data (which loads TensorFlow): the other order segfaults here
  if args.skip != "faithfulness":
    faithfulness(args)
  if args.skip != "patches":
    patches(args)


if __name__ == "__main__":
  main()
