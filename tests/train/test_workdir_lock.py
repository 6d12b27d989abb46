"""One training run at a time on a workdir (train/lock.py): a live holder is refused, named; a
dead one is taken over with a warning; a holder whose lock was taken over learns it; read-only
modes run beside a training run. Local and gs:// (the local emulator, read through its own
API)."""
import datetime
import hashlib
import json
import logging
import os
import socket
import subprocess
import time

import pytest

import gcs_emulator
import helpers
import runs
from cnnviz_jax import storage
from cnnviz_jax.report import build
from cnnviz_jax.train import evaluate, lock, loop
from cnnviz_jax.train.workdir import Workdir

HOLD = ("import sys, time\nfrom cnnviz_jax.train import lock, workdir\n"
        "lock.WorkdirLock(workdir.Workdir(sys.argv[1])).acquire()\n"
        "print('held', flush=True)\ntime.sleep(600)\n")


@pytest.fixture(params=["local", "gs"])
def place(request, tmp_path):
  """(workdir, read): a workdir local or on gs://, and its lock record as the file system or
  the emulator holds it (None if absent)."""
  if request.param == "local":
    path = tmp_path / "W" / "lock.json"
    return str(tmp_path / "W"), lambda: json.loads(path.read_text()) if path.exists() else None
  gcs = request.getfixturevalue("gcs")
  prefix = f"lock_{request.node.name.split('[')[0][-20:]}_{time.monotonic_ns()}"
  bucket = gcs_emulator.BUCKET

  def read():
    name = f"{prefix}/lock.json"
    return json.loads(gcs.read(bucket, name)) if name in gcs.names(bucket, name) else None
  return f"gs://{bucket}/{prefix}", read


def _write(workdir: str, record: dict) -> None:
  """A lock record put in place by hand (what a killed run leaves behind)."""
  path = storage.path(workdir) / "lock.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(record))


def _hold(workdir) -> subprocess.Popen:
  """Another process holding W's lock through lock.WorkdirLock, until it is killed."""
  process = helpers.python("-c", HOLD, workdir, wait=False)
  output = []
  while not output or output[-1] not in ("held\n", ""):  # "": it ended
    output.append(process.stdout.readline())
  assert output[-1] == "held\n", "".join(output)[-3000:]
  return process


_PID_NAMESPACE = os.readlink("/proc/self/ns/pid")  # Linux's: the pids this process can see


def _exited_pid() -> int:
  process = subprocess.Popen(["true"])
  process.wait()
  return process.pid


def _ago(seconds: float) -> str:
  return (datetime.datetime.now().astimezone() - datetime.timedelta(seconds=seconds)).isoformat()


def test_a_live_holder_is_refused_naming_it(place):
  workdir, read = place
  holder = _hold(workdir)
  try:
    held = read()
    assert (held["host"], held["pid"]) == (socket.gethostname(), holder.pid)
    with pytest.raises(lock.WorkdirLockedError) as refused:
      lock.WorkdirLock(Workdir(workdir)).acquire()
    assert (f"is being trained by another run: host {socket.gethostname()}, pid {holder.pid}, "
            f"since {held['since']}") in str(refused.value)
    assert read()["pid"] == holder.pid  # the holder's lock is untouched
  finally:
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("where, pid, heartbeat_age, reason", [
    ("here", "exited", 0, "process {pid} has exited"),
    ("elsewhere", 1, 600, "its heartbeat is 600 s old"),
    ("elsewhere", 1, 0, None),
    ("another container", "exited", 0, None)])  # this host's name, another pid namespace
def test_a_dead_or_stale_holder_is_taken_over_with_a_warning_a_live_one_is_not(
    place, caplog, where, pid, heartbeat_age, reason):
  workdir, read = place
  pid = _exited_pid() if pid == "exited" else pid
  host = "elsewhere.example" if where == "elsewhere" else socket.gethostname()
  namespace = _PID_NAMESPACE if where == "here" else "pid:[1]"
  _write(workdir, {"host": host, "pid": pid, "pid_namespace": namespace, "since": _ago(3600),
                   "heartbeat": _ago(heartbeat_age)})
  if reason is None:  # its process cannot be looked up from here, its heartbeat is fresh
    with pytest.raises(lock.WorkdirLockedError, match=f"host {host}, pid {pid}"):
      lock.WorkdirLock(Workdir(workdir)).acquire()
    assert read()["host"] == host
    return
  with caplog.at_level(logging.WARNING), lock.WorkdirLock(Workdir(workdir)):
    assert (read()["host"], read()["pid"]) == (socket.gethostname(), os.getpid())
  assert read() is None  # released
  warning = [r.getMessage() for r in caplog.records if "took over the lock" in r.getMessage()]
  assert len(warning) == 1 and f"host {host}, pid {pid}" in warning[0], warning
  assert reason.format(pid=pid) in warning[0]


def test_the_heartbeat_is_refreshed_and_a_taken_over_holder_learns_it(place, caplog,
                                                                       monkeypatch):
  workdir, read = place
  monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
  first = lock.WorkdirLock(Workdir(workdir)).acquire()
  beat = read()["heartbeat"]
  deadline = time.time() + 30
  while read()["heartbeat"] == beat:
    assert time.time() < deadline, "the heartbeat was not refreshed"
    time.sleep(0.05)
  monkeypatch.setattr(lock, "STALE_S", -1.0)  # every heartbeat is stale now
  with caplog.at_level(logging.WARNING):
    second = lock.WorkdirLock(Workdir(workdir)).acquire()
    while not first.lost:  # the first one's next heartbeat finds the lock changed
      assert time.time() < deadline, "the old holder did not notice the take-over"
      time.sleep(0.05)
  assert any(r.levelno == logging.ERROR and "was taken over by host" in r.getMessage()
             for r in caplog.records)
  assert not first.refresh()
  first.release()
  assert read() is not None and second.refresh()  # the new holder's lock, kept
  second.release()
  assert read() is None


class _Warnings(logging.Handler):
  """The warnings logged inside the block (caplog is function-scoped)."""

  def __enter__(self):
    self.messages = []
    logging.getLogger().addHandler(self)
    return self

  def __exit__(self, *exc_info):
    logging.getLogger().removeHandler(self)

  def emit(self, record):
    if record.levelno >= logging.WARNING:
      self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  """A one-epoch run (in process) over the lock a killed run left: -> (workdir, config,
  warnings)."""
  workdir = tmp_path_factory.mktemp("trained")
  _write(str(workdir), {"host": socket.gethostname(), "pid": _exited_pid(),
                        "pid_namespace": _PID_NAMESPACE, "since": _ago(60),
                        "heartbeat": _ago(30)})
  config = runs.tiny_config(data_dir, epochs=1)
  with _Warnings() as warnings:
    loop.train_and_evaluate(config, workdir)
  return workdir, config, warnings.messages


def _files(workdir) -> dict[str, str]:
  return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_training_takes_over_a_killed_runs_lock_and_releases_its_own(trained):
  workdir, _, messages = trained
  assert any("took over the lock" in m and "has exited" in m for m in messages), messages
  assert not (workdir / "lock.json").exists()
  assert (workdir / "results.json").exists()


@pytest.mark.slow  # evaluate, a report and two command lines beside a held lock
def test_training_beside_a_live_run_is_refused_and_read_only_modes_run(trained, data_dir):
  workdir, config, _ = trained
  holder = _hold(workdir)
  try:
    before = _files(workdir)
    with pytest.raises(lock.WorkdirLockedError, match=f"pid {holder.pid}, since"):
      loop.train_and_evaluate(config, workdir)
    after = _files(workdir)  # no events file, checkpoint or config written
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != "lock.json"} == \
        {k: v for k, v in before.items() if k != "lock.json"}  # the heartbeat may move
    _, record = evaluate.evaluate_workdir(workdir, splits=["test"], name="beside")
    assert record["splits"]["test"]["num_examples"] == 64
    assert build.workdir_report(workdir, quick=True).exists()
    assert json.loads((workdir / "lock.json").read_text())["pid"] == holder.pid
    # the command line, in two processes: both refuse (the second one learns it from process 0)
    port = helpers.free_port()
    processes = [runs.run_main(workdir, data_dir, "--config.stages[0].epochs=1",
                               f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                               f"--process_id={i}", wait=False) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
  finally:
    holder.kill()
    holder.wait()
  assert [p.returncode for p in processes] == [2, 2], outputs[0][-3000:] + outputs[1][-3000:]
  assert (f"error: {workdir} is being trained by another run: host {socket.gethostname()}, "
          f"pid {holder.pid}, since") in outputs[0]
  assert f"error: process 0 could not take the lock on {workdir}" in outputs[1]
