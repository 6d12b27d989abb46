"""Figures and page parts on synthetic inputs: content, not just existence."""
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import helpers

from cnnviz_jax.report import (display, explain_figures, html, results_figures,
                               training_figures)
from cnnviz_jax.weights import preprocessing

NAMES = ["circle", "square", "triangle", "cross"]


@pytest.mark.parametrize("mode", preprocessing.MODES)
def test_display_undoes_each_preprocessing(mode):
  images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
  shown = display.to_display(preprocessing.preprocess(images, mode), mode)
  np.testing.assert_allclose(shown, images / 255.0, atol=1e-5)


def test_overlay_has_the_image_size_and_heat_colors_it():
  image = np.zeros((30, 50, 3), np.float32)
  heat = np.zeros((3, 5))
  heat[1, 2] = 1.0
  out = display.overlay(image, heat)
  assert out.shape == image.shape
  assert out[15, 25].sum() > out[0, 0].sum()  # the hot cell is brighter than a cold one


def test_signed_image_puts_zero_at_grey():
  g = np.zeros((4, 4, 3))
  g[0, 0] = [1, -1, 0]
  out = display.signed_image(g)
  assert out[1, 1].tolist() == [0.5, 0.5, 0.5] and out[0, 0, 0] > 0.5 > out[0, 0, 1]


def _results(confusion):
  confusion = np.asarray(confusion)
  names = [f"c{i}" for i in range(len(confusion))]
  per = {n: {"precision": 1.0, "recall": float(confusion[i, i] / confusion[i].sum()), "f1": 1.0,
             "support": int(confusion[i].sum())} for i, n in enumerate(names)}
  split = {"accuracy": float(np.trace(confusion) / confusion.sum()), "loss": 0.1,
           "num_examples": int(confusion.sum()), "confusion_matrix": confusion.tolist(),
           "per_class": per}
  return {"class_names": names, "splits": {"test": split}}


def test_confusion_matrix_annotates_counts_and_rates(tmp_path):
  confusion = [[5, 1, 0], [0, 7, 3], [2, 0, 8]]
  figure = results_figures.confusion_matrices(_results(confusion), tmp_path)
  assert [int(t) for t in figure.axes_texts[:9]] == sum(confusion, [])
  assert figure.axes_texts[9:12] == ["0.83", "0.17", "0.00"]
  assert "c1 taken for c2 (3×)" in figure.caption
  big = np.eye(30, dtype=int) * 3 + 1  # too many classes to annotate: the colors carry it
  assert results_figures.confusion_matrices(_results(big), tmp_path).axes_texts == []


def test_training_curves_mark_stages_and_partial_runs(tmp_path):
  history = [{"stage": s, "epoch": e, "step": 10 * i, "lr": 1e-3 / (i + 1),
              "train_loss": 1.0 / (i + 1), "train_accuracy": 0.5 + 0.05 * i,
              "val_loss": 1.1 / (i + 1), "val_accuracy": 0.45 + 0.04 * i, "epoch_seconds": 1.0}
             for i, (s, e) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)])]
  figure = training_figures.training_curves(history, tmp_path, planned_epochs=6)
  assert figure.axes_texts.count("stage 1") == 3  # one boundary marked on each of the 3 panels
  assert "best validation accuracy 57.00% at epoch 4" in figure.caption
  with Image.open(figure.path) as image:
    assert image.size[0] > 800


def test_confidently_wrong_shows_the_most_confident_mistakes_first(tmp_path):
  images = np.zeros((4, 8, 8, 3))
  labels = np.array([0, 1, 2, 3])
  probabilities = np.array([[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.05, 0.95, 0, 0],
                            [0, 0, 0.3, 0.7]])
  figure = results_figures.confidently_wrong(images, labels, probabilities, NAMES, tmp_path)
  titles = [t for t in figure.axes_texts if t.startswith("true:")]
  assert titles == ["true: triangle\npred: square (95%)", "true: square\npred: circle (60%)"]
  assert results_figures.confidently_wrong(images, labels, np.eye(4), NAMES, tmp_path) is None


def test_gif_frames_follow_class_order_with_probabilities(tmp_path):
  image = np.full((16, 16, 3), 0.5, np.float32)
  cams = np.random.default_rng(0).random((4, 4, 4))
  figure = explain_figures.all_class_gif(image, np.array([2, 0, 3, 1]), cams,
                                         np.array([0.1, 0.2, 0.3, 0.4]), NAMES, tmp_path, 2)
  with Image.open(figure.path) as gif:
    assert gif.n_frames == 4


def test_page_escapes_text_and_embeds_figures(tmp_path):
  path = tmp_path / "x.png"
  Image.new("RGB", (30, 20), "red").save(path)
  figure = display.Figure()
  figure.name, figure.title, figure.caption, figure.path = ("x", "a <b> title",
                                                            "caption & <script>", path)
  page = html.render("t<i>", [html.Section("looks", figures=[figure])], partial="killed",
                     config={"a": "<tag>"})
  assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;tag&gt;" in page
  assert 'width="30" height="20"' in page and "data:image/png;base64," in page
  assert 'data-status="partial"' in page and "Partial report: killed" in page


def test_figures_show_inline_and_write_files_only_when_asked(tmp_path):
  """Notebook ergonomics: the Figure a cell returns is shown through IPython's display
  protocol (_repr_png_: the very pixels the report writes), no file is written without a
  directory, and pyplot holds none of them (it would show them twice and keep them open)."""
  results = _results([[5, 1, 0], [0, 7, 3], [2, 0, 8]])
  shown = results_figures.confusion_matrices(results)
  gif = explain_figures.all_class_gif(np.zeros((8, 8, 3)), np.arange(4), np.ones((4, 2, 2)),
                                      np.full(4, 0.25), NAMES)
  assert shown.path is None and gif.path is None and not list(tmp_path.iterdir())
  assert plt.get_fignums() == []
  saved = results_figures.confusion_matrices(results, tmp_path)
  assert [p.name for p in tmp_path.iterdir()] == ["confusion_test.png"] == [saved.path.name]
  with Image.open(io.BytesIO(shown._repr_png_())) as inline, Image.open(saved.path) as written:
    np.testing.assert_array_equal(np.asarray(inline), np.asarray(written))


@pytest.mark.slow
def test_the_report_leaves_matplotlib_backend_to_the_user():
  """Importing the report keeps the backend a notebook (or the user) chose: a forced Agg
  would stop their own plots from showing inline (a child process: a fresh matplotlib)."""
  child = helpers.python("-c", "import matplotlib; import cnnviz_jax.report.build; "
                         "print(matplotlib.get_backend())", env={"MPLBACKEND": "svg"})
  assert child.returncode == 0, child.stderr
  assert child.stdout.split() == ["svg"]
