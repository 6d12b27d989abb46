"""Every path may be a cloud URL: workdirs, tfds data_dir, converted weights and image folders
on gs:// (a local GCS emulator: gcs_emulator.py) give what the same paths on local disk give.

What the bucket holds is read back through the emulator's own JSON API, not through the code
under test."""
import csv
import io
import json
import re
import signal
import time

import jax
import numpy as np
import pytest
from PIL import Image

import cnnviz_jax as cj
import gcs_emulator
import helpers
import runs
from cnnviz_jax import storage
from cnnviz_jax.data import image_folder

BUCKET = gcs_emulator.BUCKET  # the `gcs` fixture's (conftest.py)


def _committed_steps(gcs, prefix: str) -> list[int]:
  """Steps whose orbax checkpoint is complete (on GCS orbax marks it with a commit file)."""
  found = (re.fullmatch(rf"{prefix}/checkpoints/(\d+)/commit_success\.txt", n)
           for n in gcs.names(BUCKET, f"{prefix}/checkpoints/"))
  return sorted(int(m.group(1)) for m in found if m)


@pytest.mark.slow
def test_train_sigkill_resume_and_report_on_gs_equal_a_local_run(gcs, tmp_path, data_dir):
  local = tmp_path / "local"
  done = runs.run_main(local, data_dir)
  assert done.returncode == 0, done.stderr[-3000:]

  # the same command on gs://, its tfds data generated into the bucket too; SIGKILL once
  # the first epoch's checkpoint is committed
  workdir, cloud_data = f"gs://{BUCKET}/W", f"gs://{BUCKET}/tfds"
  process = runs.run_main(workdir, cloud_data, env=gcs.env, wait=False, report=True)
  deadline = time.time() + 600
  while not _committed_steps(gcs, "W"):
    assert process.poll() is None, process.communicate()[0][-3000:]
    assert time.time() < deadline, "no checkpoint in the bucket after 10 minutes"
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.communicate(timeout=60)
  assert process.returncode == -signal.SIGKILL
  names = gcs.names(BUCKET, "W/")
  assert "W/config.json" in names and "W/results.json" not in names
  assert json.loads(gcs.read(BUCKET, "W/lock.json"))["pid"] == process.pid  # left by the kill
  assert any(n.startswith("W/events.out.tfevents") for n in names)  # clu -> tf.summary

  resumed = runs.run_main(workdir, cloud_data, env=gcs.env, report=True)
  assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
  assert re.search(r"resumed at step \d+", resumed.stderr), resumed.stderr[-3000:]
  assert re.search(rf"took over the lock on {workdir} of host .*, pid {process.pid}, .*: "
                   rf"process {process.pid} has exited", resumed.stderr), resumed.stderr[-3000:]
  assert "W/lock.json" not in gcs.names(BUCKET, "W/")  # released at the end
  assert f"report: {workdir}/report.html" in resumed.stdout

  mirror = tmp_path / "mirror"
  gcs.download(BUCKET, "W", mirror)
  runs.assert_same_run(local, mirror)
  page = (mirror / "report.html").read_text()
  assert 'data-status="complete"' in page
  figures = json.loads((mirror / "figures" / "index.json").read_text())
  assert figures and all((mirror / "figures" / f["file"]).stat().st_size > 0 for f in figures)
  assert any(n.startswith("tfds/") for n in gcs.names(BUCKET, "tfds/"))


@pytest.mark.slow
def test_converted_weights_directory_on_gs(gcs, tmp_path):
  model = cj.models.create("small_cnn_bn", num_classes=3)
  variables = cj.models.initialize(model, jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))
  meta = cj.weights.WeightsMeta("small_cnn_bn", "cnnviz_jax", "tf", 32,
                                class_names=("a", "b", "c"))
  url = f"gs://{BUCKET}/weights/small"
  assert str(cj.weights.save(url, variables, meta)) == url
  names = gcs.names(BUCKET, "weights/small/")
  assert "weights/small/meta.json" in names
  assert any(n.startswith("weights/small/variables/") for n in names)
  assert json.loads(gcs.read(BUCKET, "weights/small/meta.json"))["class_names"] == ["a", "b", "c"]
  loaded, loaded_meta = cj.weights.load(url)
  assert loaded_meta == meta == cj.weights.load_meta(url)
  jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(variables))
  with pytest.raises(FileExistsError):
    cj.weights.save(url, variables, meta)
  with pytest.raises(FileNotFoundError, match="variables is missing"):
    cj.weights.load(f"gs://{BUCKET}/weights/none")


def _png(seed: int, mode: str = "RGB") -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
  return buffer.getvalue()


def test_image_folder_root_on_gs_lists_and_loads_like_a_local_copy(gcs, tmp_path):
  files = {"cat/a.png": _png(0), "cat/sub/b.png": _png(1), "cat/c.png": _png(2, "RGBA"),
           "dog/d.png": _png(3), "dog/e.png": _png(4), "dog/broken.png": b"not a png",
           "dog/notes.txt": b"hello"}
  for name, data in files.items():
    gcs.upload(BUCKET, f"images/{name}", data)
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(data)
  cloud = image_folder.list_folder(f"gs://{BUCKET}/images")
  local = image_folder.list_folder(str(tmp_path))
  relative = lambda listing, paths: [p[len(listing.root) + 1:] for p in paths]
  assert cloud.class_names == local.class_names == ("cat", "dog")
  assert relative(cloud, cloud.paths) == relative(local, local.paths) == \
      ["cat/a.png", "cat/c.png", "cat/sub/b.png", "dog/d.png", "dog/e.png"]
  assert cloud.convert.tolist() == local.convert.tolist() == [False, True, False, False, False]
  assert np.array_equal(cloud.labels, local.labels)
  assert sorted((relative(cloud, [p])[0], r.split(" ")[0]) for p, r in cloud.skipped) == \
      [("dog/broken.png", "unreadable"), ("dog/notes.txt", "not")]
  sources = [image_folder.folder_source(root, "train", fractions=(1.0, 0.0, 0.0))
             for root in (f"gs://{BUCKET}/images", str(tmp_path))]
  loaded = [s.load(np.arange(s.num_examples))["image"] for s in sources]
  assert [bytes(b) for b in loaded[0]] == [bytes(b) for b in loaded[1]]
  assert bytes(loaded[0][0]) == files["cat/a.png"]


@pytest.mark.slow
def test_bad_urls_are_clear_errors_before_any_work(tmp_path):
  with pytest.raises(storage.PathError, match="unknown URL scheme ftp://"):
    storage.path("ftp://host/W")
  with pytest.raises(storage.PathError, match="lost a slash; write gs://bucket/W"):
    storage.path("gs:/bucket/W")
  assert storage.absolute("gs://bucket/W") == storage.path("gs://bucket/W")  # not CWD/gs:/…
  bad = runs.run_main("gs:/bucket/W", str(tmp_path / "tfds"))
  assert bad.returncode != 0
  assert "--workdir: 'gs:/bucket/W' looks like a URL that lost a slash" in bad.stderr
  assert not (helpers.ROOT / "gs:").exists()


@pytest.mark.slow
def test_sweep_workdir_on_gs_holds_its_table_figures_and_trial_logs(gcs):
  # the table and figures of a sweep whose trials have not run yet
  table = helpers.python("-m", "experiments.sweep", "--config=configs/demo.py",
                         f"--workdir=gs://{BUCKET}/S", "--table_only",
                         "--grid=config.model.head=dense128,dense256", env=gcs.env)
  assert table.returncode == 0, table.stderr[-3000:]
  names = set(gcs.names(BUCKET, "S/"))
  assert {"S/trials.json", "S/results.csv", "S/results.md", "S/accuracy.png",
          "S/parallel_coordinates.png", "S/parameter_importance.png"} <= names, names
  rows = list(csv.DictReader(io.StringIO(gcs.read(BUCKET, "S/results.csv").decode())))
  assert [(r["trial"], r["config.model.head"], r["status"]) for r in rows] == [
      ("trial_000", "dense128", "not started"), ("trial_001", "dense256", "not started")]
  assert gcs.read(BUCKET, "S/accuracy.png").startswith(b"\x89PNG")
  # a trial's output is appended to its sweep.log in the bucket, attempt after attempt
  code = ("import os, sys\nfrom experiments import sweep\nfrom cnnviz_jax import storage\n"
          f"log = storage.path('gs://{BUCKET}/S/trial_000/sweep.log')\n"
          "for word in ('first', 'second'):\n"
          "  assert sweep._run_logged([sys.executable, '-c', f'print({word!r})'], log, "
          "dict(os.environ)) == 0\n")
  attempt = helpers.python("-c", code, env=gcs.env)
  assert attempt.returncode == 0, attempt.stderr[-3000:]
  assert gcs.read(BUCKET, "S/trial_000/sweep.log") == b"first\nsecond\n"
