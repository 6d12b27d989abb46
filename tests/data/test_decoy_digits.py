"""Decoy digits: scikit-learn's handwriting at 28 px with Ross et al.'s label-coded swatch."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from skimage import transform

from cnnviz_jax.data import decoy_digits, splits

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  out = {}
  for decoy in (4, 0):
    builder = decoy_digits.prepare(data_dir, decoy=decoy)
    out[decoy] = {s: list(tfds.as_numpy(builder.as_dataset(split=s, shuffle_files=False)))
                  for s in splits.SPLIT_NAMES}
  return out


def test_the_digits_are_sklearns_upsampled_into_mnists_box(prepared):
  """Every example is one of the 1,797 digits, bilinearly upsampled to 20 px (scikit-image's
  resize as the reference) and centered in a black 28-px frame; the splits are disjoint."""
  digits = sklearn_datasets.load_digits()
  reference = np.stack([transform.resize(d / 16.0, (20, 20), order=1, mode="edge",
                                         anti_aliasing=False) for d in digits.images])
  reference = np.clip(np.rint(reference * 255), 0, 255)
  found = []
  for split, count in zip(splits.SPLIT_NAMES, (1078, 180, 539)):
    examples = prepared[0][split]
    assert len(examples) == count
    for ex in examples:
      image = ex["image"][..., 0].astype(np.float64)
      assert not image[:4].any() and not image[-4:].any()
      assert not image[:, :4].any() and not image[:, -4:].any()
      same = np.flatnonzero(digits.target == ex["label"])  # the candidates: its class
      error = np.abs(reference[same] - image[4:24, 4:24]).max(axis=(1, 2))
      match = int(same[np.argmin(error)])
      assert error.min() <= 1  # rounding: ours and scikit-image's sum in another order
      np.testing.assert_array_equal(ex["object_mask"][..., 0], image > 0)
      found.append(match)
  assert sorted(found) == list(range(1797))  # each digit once, in one split


def test_the_swatch_codes_the_label_in_train_and_validation_and_is_random_in_test(prepared):
  for split in splits.SPLIT_NAMES:
    agree = []
    for free, ex in zip(prepared[0][split], prepared[4][split]):
      ignore = ex["ignore_mask"][..., 0] > 0
      corners = [ignore[r, c].sum() for r in (slice(0, 4), slice(24, 28))
                 for c in (slice(0, 4), slice(24, 28))]
      assert sorted(corners) == [0, 0, 0, 16]  # a 4×4 swatch in one corner
      changed = ex["image"] != free["image"]
      assert not (changed[..., 0] & ~ignore).any()  # the digit is the twin's
      np.testing.assert_array_equal(ex["object_mask"], free["object_mask"])
      grey = np.unique(ex["image"][ignore])
      assert len(grey) == 1 and (255 - int(grey[0])) % 25 == 0
      agree.append((255 - int(grey[0])) // 25 == ex["label"])
    if split == "test":
      assert 0.05 < np.mean(agree) < 0.16, np.mean(agree)  # a random digit: 1/10
    else:
      assert all(agree)


def test_a_decoy_larger_than_the_margin_is_a_clear_error():
  with pytest.raises(ValueError, match=r"config.data.digits.decoy must be in 0..4 pixels"):
    decoy_digits.make_config(decoy=5)
