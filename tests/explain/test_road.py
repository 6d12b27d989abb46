"""ROAD and the confidence-change metrics equal pytorch-grad-cam 1.5.7 (metrics/road.py,
metrics/cam_mult_image.py) on converted torchvision models.

Both sides get the same images, maps and targets, and the same imputation noise: the peer
draws it with `torch.randn_like` inside NoisyLinearImputer; the tests replace that one call by
our standard normal draws at the pixels the peer imputes (its raster order), everything else
of the peer runs as shipped. The imputation itself is checked against the peer's own
sparse system solved by SuperLU (float64) in `test_imputation_equals_the_peer_imputer`.
"""
import contextlib

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from cnnviz_jax.explain import imputation
from cnnviz_jax.explain.road import confidence_change, percentile, removed_pixels, road

torch = pytest.importorskip("torch")
pgc_road = pytest.importorskip("pytorch_grad_cam.metrics.road")
from pytorch_grad_cam.metrics.cam_mult_image import (  # noqa: E402
    CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

_SIZES = {"resnet18": 64, "resnet50": 64, "vgg11": 32, "vgg16": 32}
PERCENTILES = (20, 50, 80)
_PEER_IMPUTE = pgc_road.NoisyLinearImputer.__call__


def _smooth_maps(batch: int, size: int, seed: int) -> np.ndarray:
  """(B, S, S) float32 maps in [0, 1] like an upsampled CAM (bilinear from 7×7)."""
  coarse = jnp.asarray(np.random.RandomState(seed).rand(batch, 7, 7), jnp.float32)
  return np.asarray(jax.image.resize(coarse, (batch, size, size), "linear"))


@contextlib.contextmanager
def _peer_draws(monkeypatch, draws):
  """The peer's imputations, in call order, take their noise from `draws` (a list of
  (H, W, C) standard normal arrays): NoisyLinearImputer's `torch.randn_like(res.t())`
  returns the draw at the pixels its mask imputes, in its raster order."""
  calls = iter(draws)
  current = {}

  def call(self, img, mask):
    current["draw"], current["mask"] = next(calls), mask.numpy()
    return _PEER_IMPUTE(self, img, mask)

  def randn_like(t):
    picked = current["draw"][current["mask"] == 0]  # (N, C), raster order
    assert picked.T.shape == tuple(t.shape), (picked.shape, t.shape)
    return torch.from_numpy(np.ascontiguousarray(picked.T)).to(t.dtype)

  monkeypatch.setattr(pgc_road.NoisyLinearImputer, "__call__", call)
  monkeypatch.setattr(pgc_road.torch, "randn_like", randn_like)
  yield
  assert next(calls, None) is None, "the peer imputed fewer images than expected"


def test_percentile_and_masks_equal_numpy_with_ties():
  rng = np.random.RandomState(0)
  values = rng.rand(3, 100).astype(np.float32)
  values[0, :40] = 0.25  # a threshold that lands on tied values
  values[2] = np.round(values[2] * 4) / 4
  for p in (0, 10, 33.3, 40, 50, 90, 99, 100):
    ours = np.asarray(percentile(jnp.asarray(values), p))
    theirs = np.array([np.percentile(v, p) for v in values])
    np.testing.assert_array_equal(ours, theirs)
    maps = values.reshape(3, 10, 10)
    for order, m in (("most", maps), ("least", 1 - maps)):
      keep = np.stack([mi < np.percentile(mi, p) for mi in m])
      np.testing.assert_array_equal(np.asarray(removed_pixels(jnp.asarray(maps), p, order)),
                                    ~keep)


def test_imputation_equals_the_peer_imputer(monkeypatch, close):
  """NoisyLinearImputer (scipy SuperLU, float64) vs our multigrid conjugate gradients in
  float32, the same draws, 10% / 50% / 90% of an odd-sized image imputed: agreement to
  float32 rounding of the solve (≤ 1e-5 of scale)."""
  size, percentiles = 37, (90, 50, 10)
  rng = np.random.RandomState(0)
  cams = _smooth_maps(3, size, 1)
  image = rng.randn(size, size, 3).astype(np.float32)
  draws = rng.randn(3, size, size, 3).astype(np.float32)
  keep = np.stack([np.float32(c < np.percentile(c, p)) for c, p in zip(cams, percentiles)])
  with _peer_draws(monkeypatch, list(draws)):
    ref = [pgc_road.NoisyLinearImputer()(torch.from_numpy(image.transpose(2, 0, 1).copy()),
                                         torch.from_numpy(k)).numpy() for k in keep]
  ours = imputation.impute(jnp.asarray(np.stack([image] * 3)), jnp.asarray(keep == 0),
                           jnp.asarray(draws))
  close(ours, np.stack(ref).transpose(0, 2, 3, 1), tol=1e-5)


def _pair(torch_pair, arch):
  reference, model, variables = torch_pair(arch)
  size = _SIZES[arch]
  x = np.random.RandomState(3).randn(2, size, size, 3).astype(np.float32)
  return reference, model, variables, x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(_SIZES))
def test_road_combined_equals_pytorch_grad_cam(monkeypatch, torch_pair, close, arch):
  """ROADCombined over 3 percentiles (LeRF and MoRF: 6 imputations per image), and one
  ROADMostRelevantFirst percentile, with explicit class targets."""
  reference, model, variables, x, x_torch = _pair(torch_pair, arch)
  cams = _smooth_maps(2, x.shape[1], 7)
  classes = [3, 8]
  peer_targets = [ClassifierOutputTarget(c) for c in classes]
  noise = np.random.RandomState(4).randn(2, len(PERCENTILES), *x.shape).astype(np.float32)
  ours = road(model, variables, jnp.asarray(x), jnp.asarray(cams), np.array(classes),
              PERCENTILES, "combined", noise=jnp.asarray(noise), chunk=None)
  # the peer: LeRF averager first, then MoRF; each percentile, then each image
  draws = [noise[o, p, b] for o in (1, 0) for p in range(len(PERCENTILES)) for b in range(2)]
  with _peer_draws(monkeypatch, draws):
    ref = pgc_road.ROADCombined(list(PERCENTILES))(x_torch, cams, peer_targets, reference)
  close(ours.score, ref, tol=1e-4)
  with _peer_draws(monkeypatch, [noise[0, 2, b] for b in range(2)]):
    ref = pgc_road.ROADMostRelevantFirst(80)(x_torch, cams, peer_targets, reference)
  close(ours.most[:, 2], ref, tol=1e-4)  # the per-percentile changes: one MoRF percentile


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "vgg11"])
def test_confidence_change_equals_pytorch_grad_cam(torch_pair, close, arch):
  reference, model, variables, x, x_torch = _pair(torch_pair, arch)
  cams = _smooth_maps(2, x.shape[1], 8)
  classes = [1, 6]
  peer_targets = [ClassifierOutputTarget(c) for c in classes]
  ours = confidence_change(model, variables, jnp.asarray(x), jnp.asarray(cams),
                           np.array(classes))
  for value, peer in ((ours.change, CamMultImageConfidenceChange),
                      (ours.drop, DropInConfidence), (ours.increase, IncreaseInConfidence)):
    ref = peer()(x_torch, cams, peer_targets, reference)
    close(value, np.asarray(ref).reshape(value.shape), tol=1e-4)


@pytest.mark.slow  # four solver shapes to compile
def test_road_batching_targets_and_orders_agree(tiny, close):
  """The same draws give the same changes whether the (order, percentile) steps run in one
  batch or one at a time, for several targets at once or one by one, and for 'combined' or
  its two orders separately."""
  model, variables, x = tiny
  cams = jnp.asarray(_smooth_maps(2, x.shape[1], 5))
  noise = jax.random.normal(jax.random.key(1), (2, 2, *x.shape))
  run = lambda target, order, draws, chunk: road(  # noqa: E731
      model, variables, x, cams, target, (30, 70), order, noise=draws, chunk=chunk)
  both = run([0, 2], "combined", noise, None)
  assert both.score.shape == (2, 2) and both.most.shape == (2, 2, 2)
  close(run([0, 2], "combined", noise, 1).least, both.least, tol=1e-5)
  for k, c in enumerate([0, 2]):
    most = run(c, "most", noise[:1], None)
    least = run(np.array([c, c]), "least", noise[1:], None)
    close(most.most, both.most[:, k], tol=1e-5)
    close(least.least, both.least[:, k], tol=1e-5)
    close(both.score[:, k], (least.score - most.score) / 2, tol=1e-5)
