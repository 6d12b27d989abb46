"""Benchmark cases: see explainer_cases/__init__.py."""
from explainer_cases import Case


def _gradient_cams(bench) -> list[Case]:
  """cam_methods.py and kernel_pca.py against their pytorch-grad-cam classes: layer4, each
  image's top-1 class (both sides pick it from their own forward pass)."""
  # pylint: disable=import-outside-toplevel
  import jax
  import pytorch_grad_cam as pgc
  from cnnviz_jax.explain import cam_methods
  from cnnviz_jax.explain.kernel_pca import kpca_cam
  # pylint: enable=import-outside-toplevel

  def case(fn, peer: str, **kwargs) -> Case:
    return Case(fn.__name__, lambda: bench.ours(fn, layer="layer4", **kwargs),
                lambda: bench.cam_peer(getattr(pgc, peer), bench.x_torch, None),
                f"pytorch-grad-cam {peer}")

  return [case(cam_methods.hires_cam, "HiResCAM"),
          case(cam_methods.grad_cam_elementwise, "GradCAMElementWise"),
          case(cam_methods.eigen_grad_cam, "EigenGradCAM"),
          case(kpca_cam, "KPCA_CAM"),
          case(cam_methods.fem, "FEM"),
          case(cam_methods.shapley_cam, "ShapleyCAM"),
          case(cam_methods.finer_cam, "FinerCAM"),
          case(cam_methods.random_cam, "RandomCAM", key=jax.random.key(0))]


def cases(bench):
  return _gradient_cams(bench)
