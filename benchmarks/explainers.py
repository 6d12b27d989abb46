"""Explainer speed: cnnviz_jax (jit) vs pytorch-grad-cam and Captum, same weights, same run.

ResNet-50 (torchvision layout, random weights), 224×224, batch 8, target = top-1 class.
Prints seconds per call and the speed-up (peer time / our time), and each of ours in
units of our own forward pass. Run on 1 core (taskset -c 0) and on 2 cores:

  python benchmarks/explainers.py                    # everything, repeats=3
  python benchmarks/explainers.py --only grad_cam,score_cam --score-cam-size 112
  python benchmarks/explainers.py --gpu --batch 64   # on a GPU: both sides on CUDA

Score-CAM masks one image (2,048 masked forwards at layer4) and both sides batch 64
masked images; all-class CAM explains one image for all 1,000 classes, pytorch-grad-cam
is timed on --all-class-sample classes and scaled to 1,000 (one call per class).
"""
import argparse
import importlib
import inspect
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=wrong-import-position

common.choose_devices()

METHODS = ("grad_cam", "grad_cam_plus_plus", "guided_backprop", "smoothgrad",
           "integrated_gradients", "score_cam", "all_class_cam")
# Modules of explainer_cases/ whose cases(bench) follow the methods above.
FAMILIES = ("cam_family", "cam_family_perturbed", "perturbation", "rules", "layer", "metrics")


def worker(args):
  # pylint: disable=import-outside-toplevel
  import numpy as np
  import torch
  import torchvision

  import jax
  import cnnviz_jax as cj
  # pylint: enable=import-outside-toplevel
  cores = len(os.sched_getaffinity(0))
  torch.set_num_threads(cores)
  device = common.torch_device()
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, torch {torch.__version__} on "
        f"{device}, {cores} core(s), batch {args.batch}, {args.size}px, repeats {args.repeats}",
        flush=True)

  reference = torchvision.models.resnet50(weights=None).eval()
  variables = jax.device_put(cj.weights.from_torchvision("resnet50", reference.state_dict())[0])
  model = cj.models.create("resnet50")
  x = np.random.RandomState(0).randn(args.batch, args.size, args.size, 3).astype(np.float32)
  reference.to(device)
  x_jax = jax.device_put(x)
  x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)
  with torch.no_grad():
    classes = reference(x_torch).argmax(-1).tolist()
  target_jax = np.asarray(classes)

  def ours(fn, inputs=x_jax, arrays=None, **kwargs):
    # arrays: keyword arrays passed at call time; bound in kwargs they would be constants,
    # and XLA would fold whatever depends only on them (a sort, the draws) into the compile.
    arrays = dict(arrays or {})
    if "key" in inspect.signature(fn).parameters:  # the draws too: each call draws anew
      key = kwargs.pop("key", None)
      arrays["key"] = jax.random.key(0) if key is None else key
    call = jax.jit(lambda v, z, a: fn(model, v, z, **a, **kwargs))
    compiled = call.lower(variables, inputs, arrays).compile()
    return lambda: jax.block_until_ready(compiled(variables, inputs, arrays))

  def torch_forward():
    with torch.inference_mode():
      reference(x_torch)
    common.torch_sync()

  forward = common.alternate({"jax": ours(lambda m, v, z: m.apply(v, z)), "torch": torch_forward},
                             repeats=args.repeats)
  print(f"\nforward: jax {forward['jax']:.3f}s, torch {forward['torch']:.3f}s "
        f"({forward['torch'] / forward['jax']:.2f}x)")
  print(f"{'method':22s} {'jax s':>9s} {'peer s':>9s} {'speed-up':>9s} {'jax/fwd':>8s} "
        f"{'jax img/s':>10s}  peer")

  def report(name, seconds, peer_name, per_call_scale=1.0, images=args.batch):
    ratio = seconds["peer"] * per_call_scale / seconds["jax"]
    print(f"{name:22s} {seconds['jax']:9.3f} {seconds['peer'] * per_call_scale:9.3f} "
          f"{ratio:8.2f}x {seconds['jax'] / forward['jax']:8.2f} "
          f"{images / seconds['jax']:10.1f}  {peer_name}"
          f"{common.goal_note(name.split(' (')[0], ratio)}", flush=True)

  def cam_peer(cls, inputs, targets, layers=None):
    def run():
      with cls(reference, layers or [reference.layer4]) as method:
        method.batch_size = 64
        method(inputs, targets=targets)
    return run

  def captum_peer(attribution, **kwargs):
    def run():
      attribution.attribute(x_torch.clone(), target=classes, **kwargs)
      common.torch_sync()
    return run

  only = set(args.only.split(",")) if args.only else None
  bench = types.SimpleNamespace(
      model=model, variables=variables, reference=reference, x=x, x_jax=x_jax, x_torch=x_torch,
      classes=classes, target_jax=target_jax, args=args, device=device, ours=ours,
      captum_peer=captum_peer, cam_peer=cam_peer, torch_sync=common.torch_sync)
  _builtin_methods(args, bench, report, forward, only or set(METHODS))
  for family in FAMILIES:
    for case in importlib.import_module(f"explainer_cases.{family}").cases(bench):
      if only is None or case.method in only:
        report(case.name, common.alternate(
            {"jax": case.make_jax(), "peer": case.make_peer()},
            case.repeats or args.repeats, warmup=case.warmup), case.peer_name,
               images=case.images or args.batch)


def _builtin_methods(args, bench, report, forward, only):
  # pylint: disable=import-outside-toplevel
  import jax
  import numpy as np
  import torch
  from captum import attr as captum_attr
  import pytorch_grad_cam as pgc
  from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
  import cnnviz_jax as cj
  # pylint: enable=import-outside-toplevel
  E = cj.explain
  ours, cam_peer, captum_peer = bench.ours, bench.cam_peer, bench.captum_peer
  reference, x, x_torch, target_jax = bench.reference, bench.x, bench.x_torch, bench.target_jax
  device = bench.device
  if "grad_cam" in only:
    report("grad_cam", common.alternate(
        {"jax": ours(E.grad_cam, layer="layer4"), "peer": cam_peer(pgc.GradCAM, x_torch, None)},
        args.repeats), "pytorch-grad-cam GradCAM")
  if "grad_cam_plus_plus" in only:
    report("grad_cam_plus_plus", common.alternate(
        {"jax": ours(E.grad_cam_plus_plus, layer="layer4"),
         "peer": cam_peer(pgc.GradCAMPlusPlus, x_torch, None)}, args.repeats),
           "pytorch-grad-cam GradCAMPlusPlus")
  if "guided_backprop" in only:
    report("guided_backprop", common.alternate(
        {"jax": ours(E.guided_backprop, target=target_jax),
         "peer": captum_peer(captum_attr.GuidedBackprop(reference))}, args.repeats),
           "Captum GuidedBackprop")
  if "smoothgrad" in only:
    report(f"smoothgrad ({args.samples})", common.alternate(
        {"jax": ours(E.smoothgrad, target=target_jax, samples=args.samples, stdev=0.15,
                     chunk=args.chunk),
         "peer": captum_peer(captum_attr.NoiseTunnel(captum_attr.Saliency(reference)),
                             nt_type="smoothgrad", nt_samples=args.samples, stdevs=0.15,
                             nt_samples_batch_size=max(1, args.chunk // args.batch),
                             abs=False)}, args.repeats, warmup=1),
           "Captum NoiseTunnel(Saliency)")
  if "integrated_gradients" in only:
    report(f"integrated_grads ({args.steps})", common.alternate(
        {"jax": ours(E.integrated_gradients, target=target_jax, steps=args.steps,
                     method="riemann_trapezoid", chunk=args.chunk),
         "peer": captum_peer(captum_attr.IntegratedGradients(reference), n_steps=args.steps,
                             method="riemann_trapezoid", internal_batch_size=args.chunk)},
        args.repeats, warmup=1), "Captum IntegratedGradients")
  if "score_cam" in only:
    size = args.score_cam_size
    one = np.random.RandomState(1).randn(1, size, size, 3).astype(np.float32)
    one_torch = torch.from_numpy(one.transpose(0, 3, 1, 2).copy()).to(device)
    with torch.no_grad():
      cls = int(reference(one_torch).argmax())
    report(f"score_cam (1 img {size}px)", common.alternate(
        {"jax": ours(E.score_cam, jax.device_put(one), layer="layer4", target=cls, chunk=64),
         "peer": cam_peer(pgc.ScoreCAM, one_torch, [ClassifierOutputTarget(cls)])},
        repeats=1, warmup=0), "pytorch-grad-cam ScoreCAM", images=1)
  if "all_class_cam" in only:
    one = jax.device_put(x[:1])
    sample = args.all_class_sample

    def peer_sample():
      with pgc.GradCAM(reference, [reference.layer4]) as method:
        for k in range(sample):
          method(x_torch[:1], targets=[ClassifierOutputTarget(k)])

    seconds = common.alternate({"jax": ours(E.grad_cam, one, layer="layer4", target="all"),
                                "peer": peer_sample}, repeats=args.repeats, warmup=1)
    report("all_class_cam (1 img)", seconds,
           f"pytorch-grad-cam GradCAM x1000 (from {sample} calls)", 1000 / sample, images=1)
    single = common.alternate({"one": ours(E.grad_cam, one, layer="layer4")}, args.repeats)
    print(f"{'':22s} all 1000 classes = {seconds['jax'] / single['one']:.2f}x one Grad-CAM "
          f"of the same image")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--samples", type=int, default=8, help="SmoothGrad samples")
  parser.add_argument("--steps", type=int, default=16, help="Integrated Gradients steps")
  parser.add_argument("--chunk", type=int, default=16, help="rows per gradient pass, both sides")
  parser.add_argument("--score-cam-size", type=int, default=224)
  parser.add_argument("--all-class-sample", type=int, default=10)
  parser.add_argument("--only", default="", help=f"comma-separated subset of {METHODS} and "
                      "the explainer_cases families' methods (default: all)")
  parser.add_argument("--gpu", action="store_true", help="run both on the GPU, once")
  args = parser.parse_args()
  if args.worker:
    worker(args)
    return
  common.run_per_core_count(__file__, sys.argv[1:])


if __name__ == "__main__":
  main()
