"""Vectorized numpy drawing of the synthetic "shapes" images and their object masks.

Each image holds one object whose *shape* is the class. Everything else is random and
independent of the class: color, position, size, rotation, the textured background and an
optional distractor (an elongated ellipse, which is no class). Shapes are scaled to equal
area and all use the same placement margin, so neither mask area nor position tells the
class. Measured notes from the issue: thin lines as clutter look like cross/square arms and
stall learning (so the clutter is smooth color noise), and objects under ~30% of the side
are hard at 32-64 px (so by default a circle spans 34-50% of the side, a star or triangle up
to 78%). `object_size` sets that range: smaller objects on a larger canvas spread the object
over the image, so a "guess the center" baseline stops scoring (the pointing-game tests).
"""
import functools

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "star", "ring", "heart", "half_disc")
_SUPERSAMPLE = 2  # sub-pixels per side: antialiased edges, mask = coverage >= 1/2
_AREA = np.pi * 0.7**2  # every shape's area in the unit frame (a disc of radius 0.7)
_MIN_CONTRAST = 110.0  # L2 distance in RGB between the object and the mean background
OBJECT_SIZE = (0.24, 0.36)  # object radius range, fraction of the image side


def _inside(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Whether (x, y) in the shape's unit frame (radius ~1, centered) lies inside it."""
  r2 = x * x + y * y
  if name == "circle":
    return r2 <= 1.0
  if name == "square":
    return np.maximum(np.abs(x), np.abs(y)) <= 0.75
  if name == "triangle":  # equilateral, circumradius 1, one vertex up
    out = np.zeros(x.shape, bool)
    for angle in (-90.0, 30.0, 150.0):  # outward edge normals; inradius 1/2
      a = np.deg2rad(angle)
      out |= x * np.cos(a) + y * np.sin(a) > 0.5
    return ~out
  if name == "cross":  # plus sign, arm half-width 0.3: thick, never line-like
    ax, ay = np.abs(x), np.abs(y)
    return ((ax <= 0.3) & (ay <= 0.95)) | ((ay <= 0.3) & (ax <= 0.95))
  if name == "star":  # five points, inner radius 0.45
    alpha = np.pi / 5
    phi = np.mod(np.arctan2(x, y), 2 * alpha)  # 0 at a tip (pointing up)
    phi = np.abs(phi - alpha)  # fold: alpha at a tip, 0 at an inner vertex
    r = np.sqrt(r2)
    px, py = r * np.cos(alpha - phi), r * np.sin(alpha - phi)  # tip on +x, inner at alpha
    ix, iy = 0.45 * np.cos(alpha), 0.45 * np.sin(alpha)
    # inside when on the origin's side of the tip->inner-vertex edge
    return (ix - 1.0) * py - iy * (px - 1.0) >= 0.0
  if name == "ring":
    return (r2 <= 1.0) & (r2 >= 0.5**2)
  if name == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled into the unit disc
    hx, hy = x * 1.25, -y * 1.25 + 0.2  # image rows grow downwards: flip y
    return (hx * hx + hy * hy - 1.0)**3 - hx * hx * hy**3 <= 0.0
  if name == "half_disc":
    return (r2 <= 1.0) & (y <= 0.15)
  raise ValueError(f"unknown shape {name!r}; valid: {', '.join(SHAPES)}")


@functools.cache
def _scale_and_extent(name: str) -> tuple[float, float]:
  """Scale that gives `name` the common area, and its extent (max radius) after scaling."""
  g = (np.arange(400) + 0.5) / 200.0 - 1.0
  x, y = np.meshgrid(g, g)
  inside = _inside(name, x, y)
  area = inside.mean() * 4.0
  scale = float(np.sqrt(_AREA / area))
  extent = float(np.sqrt((x * x + y * y)[inside].max()) * scale)
  return scale, extent


def _margin() -> float:
  """Placement margin in object radii, common to every shape so position hides the class."""
  return max(_scale_and_extent(s)[1] for s in SHAPES)


def _texture(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
  """Smooth colored clutter: two octaves of bilinearly upsampled noise. -> (n, S, S, 3)."""
  out = rng.uniform(40, 215, (n, 1, 1, 3)).astype(np.float32)
  for cells, amplitude in ((4, 55.0), (8, 30.0)):
    grid = rng.uniform(-amplitude, amplitude, (n, 3, cells, cells)).astype(np.float32)
    pos = np.clip((np.arange(size) + 0.5) / size * cells - 0.5, 0, cells - 1)
    lo = np.minimum(pos.astype(int), cells - 2)
    w = pos - lo
    up = np.zeros((size, cells), np.float32)  # (S, cells) linear interpolation matrix
    up[np.arange(size), lo] = 1 - w
    up[np.arange(size), lo + 1] = w
    out = out + (up @ grid @ up.T).transpose(0, 2, 3, 1)  # (n, 3, S, S) -> (n, S, S, 3)
  return out


def _coverage(names: list[str], labels: np.ndarray, center: np.ndarray, radius: np.ndarray,
              angle: np.ndarray, size: int, aspect: np.ndarray | None = None) -> np.ndarray:
  """Fraction of each pixel inside its object. center (n, 2) and radius (n,) in pixels."""
  s = _SUPERSAMPLE
  sub = ((np.arange(size * s) + 0.5) / s).astype(np.float32)  # sub-pixel centers, pixels
  inside = np.zeros((len(labels), size * s, size * s), bool)
  for k, name in enumerate(names):
    idx = np.flatnonzero(labels == k)
    if not idx.size:
      continue
    scale = _scale_and_extent(name)[0] if aspect is None else 1.0
    r = (radius[idx] * scale).astype(np.float32)[:, None, None]
    dx = sub[None, None, :] - center[idx, 0, None, None].astype(np.float32)  # (m, 1, S*s)
    dy = sub[None, :, None] - center[idx, 1, None, None].astype(np.float32)  # (m, S*s, 1)
    cos = np.cos(angle[idx]).astype(np.float32)[:, None, None] / r
    sin = np.sin(angle[idx]).astype(np.float32)[:, None, None] / r
    u = cos * dx + sin * dy  # rotate and scale into the shape's unit frame
    v = cos * dy - sin * dx
    if aspect is not None:
      v = v * aspect[idx].astype(np.float32)[:, None, None]
    inside[idx] = _inside(name, u, v)
  count = sum(inside[:, i::s, j::s].astype(np.float32) for i in range(s) for j in range(s))
  return count / (s * s)


def _contrasting_colors(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
  """Uniform random RGB colors at least _MIN_CONTRAST away from `background` (n, 3)."""
  color = rng.uniform(0, 255, background.shape)
  for _ in range(64):  # rejection sampling, vectorized; converges in a few rounds
    bad = np.linalg.norm(color - background, axis=-1) < _MIN_CONTRAST
    if not bad.any():
      break
    color[bad] = rng.uniform(0, 255, (int(bad.sum()), 3))
  return color.astype(np.float32)


def render(seed: int | np.random.SeedSequence, num_examples: int, image_size: int = 32,
           num_classes: int = 5, distractor_prob: float = 0.5,
           object_size: tuple[float, float] = OBJECT_SIZE, chunk: int = 256):
  """Draws a balanced, shuffled set of shape images.

  object_size: (min, max) object radius as a fraction of the side (the unit-frame radius:
  a circle's diameter spans twice that).
  Returns (images uint8 (N, S, S, 3), masks uint8 (N, S, S) in {0, 1}, labels int64 (N,)).
  Same seed -> same bytes. Each class appears N // C or N // C + 1 times.
  """
  if not 1 <= num_classes <= len(SHAPES):
    raise ValueError(f"num_classes must be in 1..{len(SHAPES)} (shapes: {', '.join(SHAPES)}); "
                     f"got {num_classes}")
  if image_size < 8:
    raise ValueError(f"image_size must be >= 8 pixels; got {image_size}")
  low, high = object_size
  if not 0 < low <= high <= 0.5 / _margin():  # the whole object fits inside the image
    raise ValueError(f"object_size must be 0 < min <= max <= {0.5 / _margin():.3f} (radius as a "
                     f"fraction of the side); got {tuple(object_size)}")
  rng = np.random.default_rng(seed)
  names = list(SHAPES[:num_classes])
  labels = rng.permutation(np.arange(num_examples) % num_classes)
  images = np.empty((num_examples, image_size, image_size, 3), np.uint8)
  masks = np.empty((num_examples, image_size, image_size), np.uint8)
  margin = _margin()
  for start in range(0, num_examples, chunk):
    lab = labels[start:start + chunk]
    n = len(lab)
    image = _texture(rng, n, image_size)
    # distractor: an elongated ellipse (aspect 2.5-3.5) drawn under the object
    d_on = rng.uniform(size=n) < distractor_prob
    d_radius = rng.uniform(0.18, 0.28, n) * image_size
    d_center = rng.uniform(0.1, 0.9, (n, 2)) * image_size
    d_cov = _coverage(["circle"], np.zeros(n, int), d_center, d_radius,
                      rng.uniform(0, np.pi, n), image_size, rng.uniform(2.5, 3.5, n))
    d_color = _contrasting_colors(rng, image.mean(axis=(1, 2)))
    d_cov *= d_on[:, None, None]
    image = image * (1 - d_cov[..., None]) + d_color[:, None, None] * d_cov[..., None]
    # the class object, fully inside the image (see the module docstring for sizes)
    radius = rng.uniform(low, high, n) * image_size
    lo, hi = radius * margin, image_size - radius * margin
    center = lo[:, None] + rng.uniform(size=(n, 2)) * (hi - lo)[:, None]
    cov = _coverage(names, lab, center, radius, rng.uniform(0, 2 * np.pi, n), image_size)
    color = _contrasting_colors(rng, image.mean(axis=(1, 2)))
    image = image * (1 - cov[..., None]) + color[:, None, None] * cov[..., None]
    image += 6.0 * rng.standard_normal(image.shape, np.float32)  # grain, object included
    images[start:start + n] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    masks[start:start + n] = cov >= 0.5
  return images, masks, labels.astype(np.int64)
