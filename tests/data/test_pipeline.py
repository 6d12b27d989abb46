"""The input pipeline: batch contents, determinism, exact resume, eval exactly-once, sharding
over 8 simulated devices and over 2 local processes (same batches as 1 process). The two
processes stream their examples from array_record files; the reference caches tfrecord's."""
import functools

import numpy as np
import pytest

import helpers
import pipeline_worker  # pylint: disable=import-error
from cnnviz_jax.data import config, pipeline
from pipeline_worker import SHAPES  # pylint: disable=import-error


@pytest.fixture(scope="module", autouse=True)
def workers(shapes_dir, shapes_array_record_dir, tmp_path_factory):
  """Starts the 8-device and the 2-process runs first: they overlap the in-process tests."""
  out, port = tmp_path_factory.mktemp("workers"), helpers.free_port()
  start = functools.partial(helpers.python, pipeline_worker.__file__, wait=False)
  procs = {"d8": start(out / "d8.npz", shapes_dir, env=helpers.eight_devices())}
  for i in range(2):
    procs[f"p{i}"] = start(out / f"p{i}.npz", shapes_array_record_dir, i, 2, port,
                           env={"PIPELINE_STREAM": "1"})
  yield {name: (proc, out / f"{name}.npz") for name, proc in procs.items()}
  for proc in procs.values():
    if proc.poll() is None:
      proc.kill()


def _result(workers, name):
  proc, path = workers[name]
  output, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0, output[-4000:]
  return dict(np.load(path))


def _cfg(shapes_dir, **kw):
  return {**dict(name="shapes", data_dir=shapes_dir, shapes=SHAPES, batch_size=8, image_size=16,
                 augment=config.KERAS_SEED_001, seed=1), **kw}


def _np(batch):
  return {k: np.asarray(v) for k, v in batch.items()}


def test_train_batch_keys_dtypes_shapes(shapes_dir):
  it = pipeline.train_iterator(_cfg(shapes_dir, normalization="torch"))
  b = next(it)
  assert set(b) == {"image", "label", "valid", "index", "object_mask"}
  assert b["image"].shape == (8, 16, 16, 3) and b["image"].dtype == np.float32
  assert b["label"].dtype == np.int32 and b["label"].shape == (8,)
  assert b["object_mask"].shape == (8, 16, 16)
  assert np.all(np.asarray(b["valid"]) == 1.0)
  assert set(np.unique(np.asarray(b["object_mask"]))) <= {0.0, 1.0}
  assert it.num_classes == 4 and it.steps_per_epoch == 120 // 8
  assert b["image"].sharding.spec[0] == "data"
  assert -2.2 < float(b["image"].min()) < float(b["image"].max()) < 2.7  # torch-normalized


@pytest.mark.slow
def test_same_config_same_batches_and_epochs_cover_distinct_examples(shapes_dir):
  a, b = (pipeline.train_iterator(_cfg(shapes_dir)) for _ in range(2))
  seen = []
  for _ in range(a.steps_per_epoch):
    x, y = _np(next(a)), _np(next(b))
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])
    seen.append(x["index"])
  seen = np.concatenate(seen)
  assert len(np.unique(seen)) == len(seen) == 120  # one epoch: every example once
  other_seed = _np(next(pipeline.train_iterator(_cfg(shapes_dir, seed=2))))
  assert not np.array_equal(other_seed["index"], _np(next(pipeline.train_iterator(
      _cfg(shapes_dir))))["index"])


@pytest.mark.slow
def test_resume_from_state_is_exact_across_an_epoch_boundary(shapes_dir):
  it = pipeline.train_iterator(_cfg(shapes_dir))
  for _ in range(13):
    next(it)
  state = it.get_state()
  assert state == {"step": 13}
  expected = [_np(next(it)) for _ in range(4)]  # steps 13..16, epoch boundary at 15
  resumed = pipeline.train_iterator(_cfg(shapes_dir), start_step=state["step"])
  for want in expected:
    got = _np(next(resumed))
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
  resumed.set_state({"step": 13})
  np.testing.assert_array_equal(_np(next(resumed))["image"], expected[0]["image"])


def test_eval_sees_every_example_once_and_pads_the_last_batch(shapes_dir):
  ev = pipeline.eval_iterator(_cfg(shapes_dir), eval_batch_size=16)
  batches = [_np(b) for b in ev]
  assert len(batches) == len(ev) == 3  # 37 examples -> 16 + 16 + 5 (+ 11 padding)
  index = np.concatenate([b["index"] for b in batches])
  valid = np.concatenate([b["valid"] for b in batches])
  assert sorted(index[valid > 0]) == list(range(37))
  assert np.all(index[valid == 0] == -1) and valid[:37].all() and not valid[37:].any()
  again = np.concatenate([_np(b)["image"] for b in ev])  # a second pass is identical
  np.testing.assert_array_equal(again, np.concatenate([b["image"] for b in batches]))


def test_eval_images_are_not_augmented(shapes_dir):
  plain = next(iter(pipeline.eval_iterator(_cfg(shapes_dir, augment=dict(kind=None)))))
  aug = next(iter(pipeline.eval_iterator(_cfg(shapes_dir))))
  np.testing.assert_array_equal(np.asarray(plain["image"]), np.asarray(aug["image"]))


def test_unknown_fields_and_values_are_clear_errors(shapes_dir):
  with pytest.raises(ValueError, match=r"unknown config field\(s\) config\.data\.batchsize; "
                                       r"valid: augment, batch_size, "):
    pipeline.train_iterator(_cfg(shapes_dir), batchsize=4)
  with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid: shapes"):
    pipeline.train_iterator(_cfg(shapes_dir, name="mnist"))
  with pytest.raises(ValueError, match="augmentation kind 'imgaug'"):
    pipeline.train_iterator(_cfg(shapes_dir, augment=dict(kind="imgaug")))


@pytest.mark.slow
def test_eight_simulated_devices_give_the_single_device_batches(shapes_dir, workers):
  got = _result(workers, "d8")
  assert got["num_devices"] == 8 and not got["streaming"]
  _compare_with_single_process(shapes_dir, [got])
  assert "global batch size 9 is not divisible by the 8 devices" in str(got["error"])
  assert got["eval_valid_total"] == 37


@pytest.mark.slow  # two JAX processes
def test_two_processes_give_the_single_process_batches(shapes_dir, workers):
  got = [_result(workers, f"p{i}") for i in range(2)]
  assert [g["num_devices"] for g in got] == [2, 2]
  assert all(g["streaming"] and g["eval_streaming"] for g in got)
  _compare_with_single_process(shapes_dir, got)
  assert got[0]["eval_valid_total"] == got[1]["eval_valid_total"] == 37
  # every eval example exactly once across the two hosts
  index = np.concatenate([g[k] for g in got for k in g if k.startswith("eval_") and
                          k.endswith("_index")])
  assert sorted(index[index >= 0]) == list(range(37))


def _compare_with_single_process(shapes_dir, workers):
  it = pipeline.train_iterator(_cfg(shapes_dir), start_step=12)
  for step in range(12, 18):
    want = _np(next(it))
    for key in ("image", "label", "index", "object_mask"):
      got = np.zeros_like(want[key])
      covered = np.zeros(8, bool)
      for w in workers:
        rows = w[f"train_{step}_rows"]
        got[rows] = w[f"train_{step}_{key}"]
        covered[rows] = True
      assert covered.all()
      np.testing.assert_array_equal(got, want[key], err_msg=f"step {step} {key}")


def test_stats_and_weights_meta(shapes_dir):
  from cnnviz_jax.data import stats  # pylint: disable=import-outside-toplevel
  from cnnviz_jax.weights import WeightsMeta  # pylint: disable=import-outside-toplevel
  out = stats.dataset_stats(_cfg(shapes_dir))
  assert out["class_names"] == ["circle", "square", "triangle", "cross"]
  assert set(out["splits"]) == {"train", "validation"}  # num_test=0: no test split
  assert out["splits"]["train"]["per_class"] == dict.fromkeys(out["class_names"], 30)
  mean, std = stats.mean_std(_cfg(shapes_dir), max_images=40)
  assert all(0.2 < m < 0.8 for m in mean) and all(0.1 < s < 0.45 for s in std)
  meta = WeightsMeta("resnet18", "torchvision", "torch", input_size=24, resize_size=28)
  cfg = config.with_meta(_cfg(shapes_dir), meta)
  assert (cfg["image_size"], cfg["resize_size"], cfg["normalization"]) == (24, 28, "torch")
  assert next(iter(pipeline.eval_iterator(cfg)))["image"].shape == (8, 24, 24, 3)
