"""HiResCAM, GradCAMElementWise, EigenGradCAM, KPCA-CAM, FEM, ShapleyCAM, Finer-CAM and
RandomCAM equal pytorch-grad-cam's classes on converted torchvision models and on the real
EfficientNet-Lite0, with the same layers, targets and (RandomCAM) random draws.

Sizes keep the maps non-trivial and the tests quick: ResNets at 64 px explained at layer3
and VGGs at 64 px at block4 (4×4: FEM's mean + 2·std threshold cannot be exceeded on 2×2
maps, where it leaves nothing). Ours run eagerly (the contract tests cover jit).

The SVD's sign is arbitrary: ours orients the first principal direction so that its
loadings sum to >= 0, which makes the projection correlate positively with the channel sum
of the weighted activations (for EigenGradCAM: with HiResCAM's map); pytorch-grad-cam keeps
LAPACK's sign, which on these models gives the anti-correlated map. The peer runs here with
its own projection put to our orientation (`_oriented`), and the projections themselves
are compared up to sign.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnnviz_jax.explain import maps
from cnnviz_jax.explain.cam import eigen_projection
from cnnviz_jax.explain.cam_methods import (eigen_grad_cam, fem, finer_cam, finer_target,
                                            grad_cam_elementwise, hires_cam, random_cam,
                                            shapley_cam)
from cnnviz_jax.explain.grad_cam import grad_cam
from cnnviz_jax.explain.kernel_pca import kernel_pca_projection, kpca_cam
from cnnviz_jax.models import taps

torch = pytest.importorskip("torch")
pgc = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils import model_targets  # noqa: E402
from pytorch_grad_cam.utils import svd_on_activations  # noqa: E402

OURS = {"hires_cam": hires_cam, "grad_cam_elementwise": grad_cam_elementwise,
        "eigen_grad_cam": eigen_grad_cam, "kpca_cam": kpca_cam, "fem": fem,
        "shapley_cam": shapley_cam, "finer_cam": finer_cam, "random_cam": random_cam}
PEERS = {"hires_cam": "HiResCAM", "grad_cam_elementwise": "GradCAMElementWise",
         "eigen_grad_cam": "EigenGradCAM", "kpca_cam": "KPCA_CAM", "fem": "FEM",
         "shapley_cam": "ShapleyCAM", "finer_cam": "FinerCAM", "random_cam": "RandomCAM"}
PEER_PROJECTION = svd_on_activations.get_2d_projection


def _oriented(batch: np.ndarray) -> np.ndarray:
  """The peer's get_2d_projection, negated where it anti-correlates with the centered
  channel sum (= where its direction's loadings sum to < 0: our orientation)."""
  out = PEER_PROJECTION(batch)
  for i, acts in enumerate(batch):
    flat = acts.reshape(acts.shape[0], -1).T
    flat = flat - flat.mean(axis=0)
    if np.sum(out[i].ravel() * flat.sum(axis=1)) < 0:
      out[i] = -out[i]
  return out


@pytest.fixture(autouse=True)
def oriented_peer(monkeypatch):
  for module in ("base_cam", "hirescam", "grad_cam_elementwise", "eigen_grad_cam"):
    monkeypatch.setattr(f"pytorch_grad_cam.{module}.get_2d_projection", _oriented)


def _torch(x: np.ndarray):
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def _rest(classes):
  """The ShapleyCAM paper's ReST score (logit minus cross-entropy) of per-image classes:
  ours as a callable target; its Hessian does not vanish in a ReLU network."""
  classes = jnp.asarray(classes)[:, None]
  return lambda out: jnp.take_along_axis(out + jax.nn.log_softmax(out), classes, axis=1)[:, 0]


def _compare(close, name, reference, peer_layers, model, variables, layers, x, target=None,
             size=None, **options):
  """Our `name` and the peer's on the same images; options go to both (aug_smooth,
  eigen_smooth); target: None (top-1) or an int (Finer-CAM's target_idx, else per image);
  size: ours at the input's size (else normalize(upsample(ours)))."""
  x_torch = _torch(x)
  ours_kw, peer_kw, peer_targets = {"size": size}, {}, None
  if target is not None:
    peer_targets = [model_targets.ClassifierOutputTarget(target)] * len(x)
  if name == "finer_cam" and target is not None:
    peer_kw, peer_targets = {"target_idx": target}, None
  if name == "shapley_cam":
    with torch.no_grad():
      top1 = reference(x_torch).argmax(1).numpy()
    peer_targets = [model_targets.ClassifierOutputReST(int(c)) for c in top1]
    target = _rest(top1)
  if name == "random_cam":  # the peer's numpy draws, one (B, C) array per layer in order
    shapes = taps.layer_shapes(model, variables, x)
    np.random.seed(7)
    ours_kw["weights"] = [np.random.uniform(-1, 1, (len(x), shapes[n][-1])) for n in layers]
    np.random.seed(7)
  with getattr(pgc, PEERS[name])(reference, peer_layers) as peer:
    theirs = peer(x_torch, targets=peer_targets, **peer_kw, **options)
  layer = layers[0] if len(layers) == 1 else list(layers)
  ours = OURS[name](model, variables, x, layer, target, **ours_kw, **options)
  if size is None:
    ours = maps.normalize(maps.upsample(ours, x.shape[1:3]))
  return close(ours, theirs)


def _vgg_pool(reference, block: int):
  return [m for m in reference.features if isinstance(m, torch.nn.MaxPool2d)][block - 1]


@pytest.fixture(scope="module")
def images():
  return np.random.RandomState(1).randn(2, 64, 64, 3).astype(np.float32)


def _setup(torch_pair, arch):
  reference, model, variables = torch_pair(arch)
  if arch.startswith("vgg"):
    return reference, [_vgg_pool(reference, 4)], model, variables, ["block4"]
  return reference, [reference.layer3], model, variables, ["layer3"]


@pytest.mark.slow
@pytest.mark.parametrize("arch,name", [("resnet18", n) for n in OURS] + [
    ("vgg11", n) for n in OURS] + [
    ("resnet50", "kpca_cam"), ("resnet50", "grad_cam_elementwise"),
    ("vgg16", "fem"), ("vgg16", "finer_cam")])
def test_equals_pytorch_grad_cam(torch_pair, close, images, arch, name):
  reference, peer_layers, model, variables, layers = _setup(torch_pair, arch)
  _compare(close, name, reference, peer_layers, model, variables, layers, images)


@pytest.mark.slow
@pytest.mark.parametrize("name,target", [("hires_cam", 4), ("finer_cam", 7)])
def test_a_given_class_equals_pytorch_grad_cam(torch_pair, close, images, name, target):
  """hires_cam: class 4 for both images; finer_cam: class 7 against its nearest classes
  (the peer's target_idx)."""
  _compare(close, name, *_setup(torch_pair, "resnet18"), images, target=target)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hires_cam", "random_cam"])
def test_eigen_smooth_equals_pytorch_grad_cam(torch_pair, close, images, name):
  _compare(close, name, *_setup(torch_pair, "vgg11"), images, eigen_smooth=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grad_cam_elementwise", "kpca_cam", "fem"])
def test_aug_smooth_equals_pytorch_grad_cam(torch_pair, close, images, name):
  _compare(close, name, *_setup(torch_pair, "resnet18"), images, aug_smooth=True,
           size=(64, 64))


@pytest.mark.slow
def test_random_cam_over_two_layers_equals_pytorch_grad_cam(torch_pair, close, images):
  """One draw per layer, in the layers' order; maps normalized, resized, averaged."""
  reference, model, variables = torch_pair("resnet18")
  _compare(close, "random_cam", reference, [reference.layer2, reference.layer3], model,
           variables, ["layer2", "layer3"], images, size=(64, 64))


@pytest.mark.slow
def test_shapley_cam_second_order_term(torch_pair, images):
  """With a logit target the Hessian of a ReLU network vanishes: ShapleyCAM = Grad-CAM.
  With ReST it does not, and the maps differ (their equality with the peer: above)."""
  _, model, variables = torch_pair("resnet18")
  logit = shapley_cam(model, variables, images, "layer3", 3)
  np.testing.assert_allclose(logit, grad_cam(model, variables, images, "layer3", 3),
                             rtol=1e-5, atol=1e-6 * float(jnp.max(logit)))
  rest = _rest(np.array([3, 3]))
  second = shapley_cam(model, variables, images, "layer3", rest)
  first = grad_cam(model, variables, images, "layer3", rest)
  assert float(jnp.max(jnp.abs(second - first))) > 1e-3 * float(jnp.max(first))


# --- the pieces, against their definitions (no network) ---------------------------------
@pytest.mark.parametrize("kernel,gamma", [("sigmoid", None), ("rbf", None), ("rbf", 0.3),
                                          ("poly", None), ("linear", None), ("cosine", None)])
@pytest.mark.parametrize("side", [4, 15])  # 15×15 = 225 positions: sklearn's ARPACK path
def test_kernel_pca_projection_equals_sklearn(close, kernel, gamma, side):
  acts = np.random.RandomState(side).rand(2, 12, side, side).astype(np.float32)  # (B, C, h, w)
  theirs = svd_on_activations.get_2d_projection_kernel(acts, kernel, gamma)
  ours = kernel_pca_projection(acts.transpose(0, 2, 3, 1), kernel, gamma)
  close(ours, theirs, tol=1e-3 if side == 15 else 1e-4)


def test_eigen_projection_is_the_peers_up_to_its_sign_and_follows_the_channel_sum(close):
  weighted = np.random.RandomState(2).randn(3, 5, 4, 16).astype(np.float32)  # (B, h, w, C)
  ours = np.asarray(eigen_projection(weighted))
  theirs = PEER_PROJECTION(weighted.transpose(0, 3, 1, 2))
  for o, t, w in zip(ours, theirs, weighted):
    close(o, t if np.abs(o - t).max() < np.abs(o + t).max() else -t)
    centered = w.reshape(-1, 16) - w.reshape(-1, 16).mean(axis=0)
    assert np.sum(o.ravel() * centered.sum(axis=1)) > 0


@pytest.mark.parametrize("target,alpha", [(None, 1.0), (5, 1.0), (None, 0.6)])
def test_finer_target_equals_the_peers_score_and_gradient(close, target, alpha):
  """The score and its gradient in the outputs, against the peer's FinerWeightedTarget on
  the classes its FinerCAM ranks (argsort of |s - s_c|, ranks 1-3)."""
  outputs = np.random.RandomState(4).randn(3, 10).astype(np.float32)
  ours = finer_target(target, 3, alpha)
  value, grad = jax.value_and_grad(lambda o: jnp.sum(ours(o)))(jnp.asarray(outputs))
  ref_value, ref_grad = 0.0, np.zeros_like(outputs)
  for i, row in enumerate(outputs):
    main = int(np.argmax(row)) if target is None else target
    order = np.argsort(np.abs(row - row[main]))
    assert order[0] == main
    t = torch.tensor(row, requires_grad=True)
    score = model_targets.FinerWeightedTarget(main, [int(j) for j in order[1:4]], alpha)(t)
    score.backward()
    ref_value += float(score.detach())
    ref_grad[i] = t.grad.numpy()
  close(value, ref_value)
  close(grad, ref_grad)


def test_finer_target_keeps_every_target_form():
  outputs = jnp.asarray(np.random.RandomState(5).randn(2, 6), jnp.float32)
  assert finer_target([1, 4], 2)(outputs).shape == (2, 2)
  assert finer_target(np.array([1, 4]), 2)(outputs).shape == (2,)
  assert finer_target("all", 2)(outputs).shape == (2, 6)
  with pytest.raises(ValueError, match="no comparison rank"):
    finer_target(None, 2, comparisons=(9,))(outputs)


# --- the real EfficientNet-Lite0 on the photographs -------------------------------------
@pytest.fixture(scope="module")
def lite0(lite0_imagenet, lite0_inputs):
  from test_real_photos import _peer_view  # pylint: disable=import-outside-toplevel
  reference, model, variables, _ = lite0_imagenet
  peer = _peer_view(reference)
  return (peer, [peer._bn1], model, variables, ["top"],  # pylint: disable=protected-access
          lite0_inputs[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OURS))
def test_equals_pytorch_grad_cam_on_the_real_lite0_and_photographs(lite0, close, name):
  _compare(close, name, *lite0)
