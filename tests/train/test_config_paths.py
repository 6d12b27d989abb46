"""Config paths next to the demo's, each against an expectation computed here: feature
extraction, label smoothing, the results' metrics and restore_best across stages."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk

import helpers
import runs
from cnnviz_jax.data import pipeline
from cnnviz_jax.train import checkpoint, from_config, inputs, loop, mesh, steps
from cnnviz_jax.train.workdir import Workdir
from configs import default


def _sgd_head_only(config, epochs=1, lr=0.1):
  config.stages = [default.stage(epochs=epochs, optimizer="sgd", lr=lr, schedule="constant",
                                 freeze=default.HEAD_ONLY, freeze_bn=True)]
  config.stages[0].optimizer.momentum = 0.0
  return config


def _split(config, split):
  """(images, labels) of a split, every example once, preprocessed as the run saw them."""
  images, labels = [], []
  for batch in pipeline.eval_iterator(from_config.data_config(config), split=split):
    keep = np.asarray(batch["valid"]) > 0
    images.append(np.asarray(batch["image"])[keep])
    labels.append(np.asarray(batch["label"])[keep])
  return np.concatenate(images), np.concatenate(labels)


@pytest.mark.slow
def test_feature_extraction_equals_training_the_head_on_the_frozen_backbone(tmp_path, data_dir):
  config = _sgd_head_only(runs.tiny_config(data_dir))
  direct = loop.train_and_evaluate(config, tmp_path / "direct")
  config.feature_extraction = True
  cached = loop.train_and_evaluate(config, tmp_path / "features")
  heads = [runs.final_state(tmp_path / d)["params"]["head"] for d in ("direct", "features")]
  helpers.assert_trees_close(*heads, atol=1e-5)
  for split in ("validation", "test"):
    assert direct["splits"][split]["confusion_matrix"] == cached["splits"][split][
        "confusion_matrix"]
    np.testing.assert_allclose(direct["splits"][split]["loss"], cached["splits"][split]["loss"],
                               rtol=1e-5)

  # The cached-feature eval path's logits are the full model's on the same images.
  data = inputs.Input(config, mesh.make_mesh())
  model = from_config.model(config, data.num_classes)
  state = runs.final_state(tmp_path / "features")
  variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
  data.cached_features(model, variables)
  shape = (config.data.batch_size, *data.image_shape)
  eval_step = jax.jit(steps.make_eval_step(model, features_input_shape=shape))
  logits = np.concatenate([np.asarray(eval_step(variables, b)[1])[np.asarray(b["valid"]) > 0]
                           for b in data.eval_batches("test")])
  images, _ = _split(config, "test")
  np.testing.assert_allclose(logits, model.apply(variables, images), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_label_smoothing_is_the_smoothed_cross_entropy_of_the_first_step(tmp_path, data_dir):
  config = runs.tiny_config(data_dir, epochs=1)
  config.data.shapes.update(num_train=32)  # one full-batch step: its loss is at the init
  config.label_smoothing = alpha = 0.2
  loop.train_and_evaluate(config, tmp_path)
  images, labels = _split(config, "train")
  model = from_config.model(config, 3)
  variables = from_config.initial_variables(
      config, model, jax.ShapeDtypeStruct((32, *images.shape[1:]), jnp.float32))
  logits, _ = model.apply(variables, images, train=True, mutable=["batch_stats"])
  # Szegedy et al. 2016: q = (1 - α) one_hot + α / K, loss = -Σ q log softmax
  q = (1 - alpha) * np.eye(3)[labels] + alpha / 3
  expected = -(q * jax.nn.log_softmax(np.asarray(logits, np.float64))).sum(-1).mean()
  np.testing.assert_allclose(runs.history(tmp_path)[0]["train_loss"], expected, rtol=1e-5)


@pytest.mark.slow
def test_results_metrics_equal_scikit_learn_with_more_than_five_classes(tmp_path, data_dir):
  config = runs.tiny_config(data_dir, epochs=1)
  config.data.shapes.update(num_classes=7, num_train=224, num_validation=70, num_test=70)
  out = loop.train_and_evaluate(config, tmp_path)
  variables, _, _ = checkpoint.saved_variables(Workdir(tmp_path))  # what results.json used
  model = from_config.model(config, 7)
  for split in ("validation", "test"):
    images, labels = _split(config, split)
    logits = np.asarray(model.apply(variables, images))
    predicted, ours = logits.argmax(-1), out["splits"][split]
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert ours["top5_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(labels, logits, k=5, labels=range(7)))
    assert ours["confusion_matrix"] == sk.confusion_matrix(labels, predicted,
                                                           labels=range(7)).tolist()
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=range(7), zero_division=0)
    per_class = [ours["per_class"][name] for name in out["class_names"]]
    np.testing.assert_allclose([c["precision"] for c in per_class], precision, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in per_class], recall, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in per_class], f1, atol=1e-12)
    assert [c["support"] for c in per_class] == support.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("restore_best", [True, False])
def test_second_stage_starts_from_the_best_epoch_with_restore_best(tmp_path, data_dir,
                                                                   restore_best):
  config = runs.tiny_config(data_dir)
  # "best" = the highest val loss: epoch 0 as the loss falls. No early stop (patience 9).
  config.early_stopping.update(metric="loss", mode="max", patience=9, restore_best=restore_best)
  config.checkpoint_keep = 4
  config.stages = [default.stage(epochs=3, optimizer="sgd", lr=0.1, schedule="constant"),
                   default.stage(epochs=1, optimizer="sgd", lr=0.0, schedule="constant",
                                 freeze_bn=True)]  # lr 0: stage 2 ends where it starts
  loop.train_and_evaluate(config, tmp_path)
  history = runs.history(tmp_path)
  best_epoch, last_epoch = history[0]["step"], history[2]["step"]
  assert max(range(3), key=lambda i: history[i]["val_loss"]) == 0
  start = runs.state_at(tmp_path, best_epoch if restore_best else last_epoch)
  end = runs.final_state(tmp_path)
  helpers.assert_trees_close(end["params"], start["params"], atol=0)
  other = runs.state_at(tmp_path, last_epoch if restore_best else best_epoch)
  assert not np.allclose(end["params"]["head"]["predictions"]["kernel"],
                         other["params"]["head"]["predictions"]["kernel"])
