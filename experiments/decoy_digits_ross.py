r"""Ross et al.'s own MLP training, re-implemented outside the library, on the decoy digits.

An independent check of configs/decoy_digits.py. The authors' Decoy MNIST code (dtak/rrr,
MultilayerPerceptron.fit) in plain JAX and optax, on the same tfds splits: raw 0–255 grey
pixels; weights and biases drawn from N(0, 0.1²); hidden 50 and 30, ReLU; the cross-entropy
summed over the batch + 1e-4 ‖θ‖² + λ Σ (A ∂/∂x Σ_k log p_k)², A the swatch; Adam at 1e-3;
batches of 256 in a fixed order; 64 epochs. None of the library's training is used, so when the
library's plain MLP falls for the swatch less than Decoy MNIST's did, this says whether its
training or the data is the reason.

Run:   python -m experiments.decoy_digits_ross [--inits 0,1,2,3] [--weights 0,10,1000] \
           [--epochs 64] [--data_dir DIR]
Prints one markdown row per (λ, initialization): λ 0 is plain training, 'decoy_free' trains on
the twin without swatches; train, test and test_no_patch (the decoy-free test images).
"""
import numpy as np
import jax
import jax.numpy as jnp
import optax
import tensorflow_datasets as tfds
from absl import app, flags

from cnnviz_jax.data import decoy_digits

HIDDEN = (50, 30)
flags.DEFINE_list("inits", ["0", "1", "2", "3"], "Initialization seeds.")
flags.DEFINE_list("weights", ["0"], "λ values on the swatch's input gradients (0: plain).")
flags.DEFINE_integer("epochs", 64, "Epochs (Ross et al.: 64).")
flags.DEFINE_string("data_dir", None, "tfds data_dir (the digits are built there once).")
FLAGS = flags.FLAGS


def load(data_dir, decoy: int, split: str):
  """(x (n, 784) raw 0–255 grey, labels, swatch masks (n, 784) bool) of one split."""
  builder = decoy_digits.prepare(data_dir, decoy=decoy)
  examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
  def flat(key):
    return np.stack([ex[key][..., 0] for ex in examples]).reshape(len(examples), -1)
  x = flat("image").astype(np.float32)
  swatch = flat("ignore_mask").astype(bool) if decoy else np.zeros(x.shape, bool)
  return x, np.array([ex["label"] for ex in examples]), swatch


def initialize(seed: int, sizes) -> list:
  rng = np.random.default_rng(seed)
  return [(np.float32(0.1) * rng.standard_normal((m, n), np.float32),
           np.float32(0.1) * rng.standard_normal(n, np.float32))
          for m, n in zip(sizes[:-1], sizes[1:])]


def log_probs(params, x):
  for w, b in params[:-1]:
    x = jax.nn.relu(x @ w + b)
  w, b = params[-1]
  return jax.nn.log_softmax(x @ w + b)


def swatch_energy(params, x, swatch):
  """Σ (A ∂/∂x Σ_k log p_k)²: Ross et al.'s explanation term before λ."""
  input_gradients = jax.grad(lambda inputs: jnp.sum(log_probs(params, inputs)))(x)
  return jnp.sum(jnp.where(swatch, input_gradients, 0.0) ** 2)


def objective(params, x, labels, swatch, weight):
  cross_entropy = -jnp.sum(jnp.take_along_axis(log_probs(params, x), labels[:, None], 1))
  squared_params = sum(jnp.sum(w ** 2) + jnp.sum(b ** 2) for w, b in params)
  return cross_entropy + 1e-4 * squared_params + weight * swatch_energy(params, x, swatch)


def fit(x, labels, swatch, weight: float, epochs: int, seed: int, batch_size: int = 256):
  params = initialize(seed, (x.shape[1], *HIDDEN, 10))
  optimizer = optax.adam(1e-3)
  state = optimizer.init(params)

  @jax.jit
  def step(params, state, batch):
    grads = jax.grad(objective)(params, *batch, weight)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for _ in range(epochs):
    for start in range(0, len(x), batch_size):
      batch = tuple(a[start:start + batch_size] for a in (x, labels, swatch))
      params, state = step(params, state, batch)
  return params


def accuracy(params, x, labels) -> float:
  return float(np.mean(np.argmax(log_probs(params, x), axis=1) == labels))


def _numbers(name: str, kind: type) -> list:
  try:
    return [kind(v) for v in FLAGS[name].value]
  except ValueError as e:
    raise app.UsageError(f"--{name} takes comma-separated {kind.__name__}s; got "
                         f"{','.join(FLAGS[name].value)}") from e


def main(argv):
  del argv
  weights, inits = _numbers("weights", float), _numbers("inits", int)
  if FLAGS.epochs < 1:
    raise app.UsageError(f"--epochs must be ≥ 1; got {FLAGS.epochs}")
  data = {(decoy, split): load(FLAGS.data_dir, decoy, split)
          for decoy in (4, 0) for split in ("train", "test")}
  test_no_patch = data[0, "test"][:2]
  print("| λ | init | train | test | test_no_patch |\n|---|---|---|---|---|")
  for name, decoy, weight in [(f"{w:g}", 4, w) for w in weights] + [("decoy_free", 0, 0.)]:
    (x, labels, swatch), test = data[decoy, "train"], data[decoy, "test"][:2]
    for init in inits:
      params = fit(x, labels, swatch, weight, FLAGS.epochs, init)
      cells = [accuracy(params, *data) for data in ((x, labels), test, test_no_patch)]
      print(f"| {name} | {init} | " + " | ".join(f"{100 * c:.1f}%" for c in cells) + " |",
            flush=True)


if __name__ == "__main__":
  app.run(main)
