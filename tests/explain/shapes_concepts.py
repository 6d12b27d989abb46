"""Concept image sets on the synthetic shapes, a torch twin of the demo CNN, and Captum's TCAV
on it: the material of test_truth_on_shapes.py's TCAV tests.

The shapes generator knows each object's shape (the label) and pixels (the mask), so a
concept is drawn, not annotated: 'the class's shape' is a set of its images (any color,
position, background); 'red' is a set of objects of every shape painted red (a color, which
no label depends on: colors are uniform at random in training).
"""
import collections
import random

import numpy as np

from cnnviz_jax.data import shapes_render

RED = (230.0, 30.0, 30.0)


def render_sets(seed: int, shape: int, per_set: int, random_sets: int, size: int,
                classes: int, object_size) -> dict[str, np.ndarray]:
  """uint8 image sets (their own random stream): {shape_name: (per_set, S, S, 3) of class
  `shape`, 'red': (per_set, …) of every shape painted red, 'randoms': (random_sets + 1,
  per_set, …) of every shape}."""
  n = classes * per_set + per_set * (random_sets + 2)
  images, masks, labels = shapes_render.render(np.random.SeedSequence([seed, 9]), n, size,
                                               classes, object_size=object_size)
  own = np.flatnonzero(labels == shape)[:per_set]
  rest = np.setdiff1d(np.arange(n), own)  # every shape, the class's included
  red_idx, random_idx = rest[:per_set], rest[per_set:per_set * (random_sets + 2)]
  red = images[red_idx].astype(np.float32)
  painted = masks[red_idx].astype(bool)
  grain = np.random.default_rng(seed).normal(0.0, 6.0, (int(painted.sum()), 3))
  red[painted] = np.asarray(RED) + grain  # the generator's own grain on a fixed color
  return {shapes_render.SHAPES[shape]: images[own],
          "red": np.clip(np.round(red), 0, 255).astype(np.uint8),
          "randoms": images[random_idx].reshape(random_sets + 1, per_set, *images.shape[1:])}


def torch_twin(variables, filters=(16, 32, 64, 96), classes: int = 5):
  """small_cnn_bn in torch with our trained weights (eval mode): conv-BN-ReLU blocks named
  as our taps under `features`, a 2×2 max-pool after the first two, mean + linear head."""
  import torch  # pylint: disable=import-outside-toplevel
  params, stats = variables["params"], variables["batch_stats"]
  tensor = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
  blocks = collections.OrderedDict()
  channels = 3
  for b, width in enumerate(filters, start=1):
    name = f"block{b}_conv1"
    conv = torch.nn.Conv2d(channels, width, 3, padding=1, bias=False)
    conv.weight.data = tensor(np.transpose(params[name]["conv"]["kernel"], (3, 2, 0, 1)))
    bn = torch.nn.BatchNorm2d(width, eps=1e-5)
    bn.weight.data, bn.bias.data = tensor(params[name]["bn"]["scale"]), tensor(
        params[name]["bn"]["bias"])
    bn.running_mean.data, bn.running_var.data = tensor(stats[name]["bn"]["mean"]), tensor(
        stats[name]["bn"]["var"])
    blocks[name] = torch.nn.Sequential(conv, bn, torch.nn.ReLU())
    if b <= 2:
      blocks[f"block{b}"] = torch.nn.MaxPool2d(2)
    channels = width
  head = torch.nn.Linear(channels, classes)
  head.weight.data = tensor(np.transpose(params["head"]["predictions"]["kernel"]))
  head.bias.data = tensor(params["head"]["predictions"]["bias"])

  class Twin(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.features, self.head = torch.nn.Sequential(blocks), head

    def forward(self, x):
      return self.head(self.features(x).mean((2, 3)))

  return Twin().eval()


def nchw(images: np.ndarray):
  import torch  # pylint: disable=import-outside-toplevel
  return torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(images), -1, -3)))


def captum_tcav(twin, layer: str, inputs, concepts: dict, randoms, target: int, save_path):
  """Captum's TCAV (its default classifier and layer attribution) on the same sets:
  [[concept, random i] for i in 1…R] per concept, then [[random 0, random i]]. Seeds
  Python's `random` (its train/test split) and numpy's (sklearn's SGD order) with 0.
  Returns ({name: (sign counts (R,), magnitudes (R,))} with 'random' for random set 0,
  {name: the CAV rows (R, D) pointing to the concept, NCHW-flattened}, the split seeds)."""
  from captum.concept import TCAV, Concept  # pylint: disable=import-outside-toplevel
  named = {name: Concept(k, name, [nchw(images)]) for k, (name, images) in
           enumerate(concepts.items())}
  rand = [Concept(100 + i, f"random{i}", [nchw(images)]) for i, images in enumerate(randoms)]
  named["random"] = rand[0]
  sets = [[named[name], r] for name in named for r in rand[1:]]
  random.seed(0)
  np.random.seed(0)
  interpreter = TCAV(twin, [layer], save_path=str(save_path))
  scores = interpreter.interpret(nchw(inputs), sets, target=target)
  out, cavs = {}, {}
  for name, concept in named.items():
    keys = ["-".join(str(c.id) for c in s) for s in sets if s[0] is concept]
    out[name] = tuple(np.array([float(scores[k][layer][kind][0]) for k in keys])
                      for kind in ("sign_count", "magnitude"))
    cavs[name] = np.stack([interpreter.cavs[k][layer].stats["weights"][0].numpy()
                           for k in keys])  # row of class `concept.id`, the smaller
  return out, cavs


def captum_training_rows(sets: int, examples: int, test_fraction: float = 0.33):
  """The training rows of Captum's DefaultClassifier for `sets` consecutive fits after
  random.seed(0): it shuffles the (concept rows, random rows) list with Python's `random`
  and holds out the first int(test_fraction · n)."""
  random.seed(0)
  rows = []
  for _ in range(sets):
    order = list(range(examples))
    random.shuffle(order)
    rows.append(np.array(order[int(test_fraction * examples):]))
  return rows
