"""One training run at a time on a workdir: W/lock.json, held while a run trains.

The lock is created only if it does not exist (a local file: O_CREAT|O_EXCL; on gs:// an
object with the generation precondition if_generation_match=0) and names its holder: host,
pid, since, heartbeat. A daemon thread refreshes the heartbeat every HEARTBEAT_S. A refresh
and the release change the lock only while it is still this run's (on gs:// the object's
generation; locally its content), so a run whose lock was taken over learns it: it logs an
error, stops refreshing and leaves the new holder's lock alone.

A second run is refused (WorkdirLockedError naming the holder) while the holder lives. A lock
left by a killed run (kill -9, a lost node) is taken over with a warning once its holder is
gone: its process has exited (same host) or its heartbeat is older than STALE_S. Only process
0 of a multi-process run holds it; the others learn a refusal from process 0. Read-only modes
(--mode=report, --mode=evaluate) never take it.
"""
import contextlib
import datetime
import json
import logging
import os
import socket
import tempfile
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

from cnnviz_jax import storage
from cnnviz_jax.train.workdir import Workdir, WorkdirError

HEARTBEAT_S = 30.0  # how often the holder rewrites its heartbeat
STALE_S = 300.0  # a heartbeat older than this: the holder is gone (clock skew between hosts
# and a slow file system stay well inside it)


class WorkdirLockedError(WorkdirError):
  """Another live run is training in the workdir."""


def _now() -> datetime.datetime:
  return datetime.datetime.now().astimezone()


class WorkdirLock:
  """W/lock.json for this process: acquire() (or `with`), release()."""

  def __init__(self, workdir: Workdir):
    self.workdir = workdir
    path = workdir.lock_json
    self._file = _GcsObject(path) if storage.is_url(path) else _LocalFile(path)
    self._since = _now()
    self._version = None  # of the lock as this run last wrote it; None: not held
    self._mutex = threading.Lock()  # the heartbeat thread against release()
    self._stop = threading.Event()
    self._thread = None
    self.lost = False  # another run took the lock over while this one held it

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()

  def acquire(self) -> "WorkdirLock":
    """Takes the lock (or takes over a dead holder's, with a warning); WorkdirLockedError
    naming a live holder."""
    self._version = self._file.create(self._record()) or self._take_over()
    self._thread = threading.Thread(target=self._beat, name="workdir-lock-heartbeat",
                                    daemon=True)
    self._thread.start()
    return self

  def refresh(self) -> bool:
    """Rewrites the heartbeat while the lock is this run's; False (and an error in the log)
    once another run has taken it over."""
    with self._mutex:
      if self._version is None:
        return False
      version = self._file.replace(self._record(), self._version)
      if version is None:
        self._version, self.lost = None, True
        found = self._file.read()
        logging.error("the lock on %s was taken over by %s: this run no longer holds it and "
                      "may overwrite the other run's checkpoints; stop one of the two",
                      self.workdir, describe(_parse(found[0]) if found else None))
        return False
      self._version = version
      return True

  def release(self) -> None:
    """Stops the heartbeat and deletes the lock if it is still this run's."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    with self._mutex:
      if self._version is not None:
        self._file.delete(self._version)
        self._version = None

  def _record(self) -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                       "pid_namespace": _pid_namespace(),
                       "since": self._since.isoformat(timespec="seconds"),
                       "heartbeat": _now().isoformat(timespec="microseconds")}).encode()

  def _take_over(self):
    """The version of the lock after taking over a gone holder's; WorkdirLockedError while
    the holder lives."""
    holder = None
    for _ in range(3):  # the holder may release or refresh it between our steps
      found = self._file.read()
      if found is None:
        version = self._file.create(self._record())
      else:
        holder = _parse(found[0])
        reason = gone(holder)
        if reason is None:
          raise WorkdirLockedError(_locked_message(self.workdir, holder))
        version = self._file.replace(self._record(), found[1])
        if version is not None:
          logging.warning("took over the lock on %s of %s: %s", self.workdir, describe(holder),
                          reason)
      if version is not None:
        return version
    raise WorkdirLockedError(_locked_message(self.workdir, holder))

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      try:
        if not self.refresh():
          return
      except Exception as e:  # pylint: disable=broad-except  (a network blip: the next beat)
        logging.warning("could not refresh the lock on %s (%s); trying again in %.0f s",
                        self.workdir, e, HEARTBEAT_S)


@contextlib.contextmanager
def training_lock(workdir: Workdir):
  """Holds W's lock (process 0) while the block runs. Every process raises
  WorkdirLockedError if process 0 could not take it, rather than wait for it at a barrier."""
  lock, failure = None, None
  if jax.process_index() == 0:
    try:
      lock = WorkdirLock(workdir).acquire()
    except Exception as e:  # pylint: disable=broad-except  (raised below, the others told)
      failure = e
  if jax.process_count() > 1:
    failed = int(multihost_utils.broadcast_one_to_all(np.int32(failure is not None)))
    if failed and failure is None:
      failure = WorkdirLockedError(f"process 0 could not take the lock on {workdir} (its "
                                   "error names the run holding it)")
  if failure is not None:
    raise failure
  try:
    yield lock
  finally:
    if lock is not None:
      lock.release()


def _parse(data: bytes) -> dict | None:
  try:
    holder = json.loads(data)
    # .astimezone(): a time written without its zone is this machine's local time
    holder["heartbeat"] = datetime.datetime.fromisoformat(holder["heartbeat"]).astimezone()
    return holder if isinstance(holder.get("pid"), int) and holder["pid"] > 0 else None
  except (ValueError, TypeError, KeyError, AttributeError):
    return None


def gone(holder: dict | None) -> str | None:
  """Why the holder of a lock is gone, or None while it may be alive."""
  if holder is None:
    return "its record is unreadable"
  here = (holder.get("host"), holder.get("pid_namespace")) == (socket.gethostname(),
                                                                _pid_namespace())
  if here and not _alive(holder["pid"]):
    return f"process {holder['pid']} has exited"
  age = (_now() - holder["heartbeat"]).total_seconds()
  if age > STALE_S:
    return f"its heartbeat is {age:.0f} s old (stale after {STALE_S:.0f} s)"
  return None


def _pid_namespace() -> str | None:
  """Linux's id of this process's pid namespace: two containers may share a host name but not
  their pids."""
  try:
    return os.readlink("/proc/self/ns/pid")
  except OSError:
    return None


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)  # signal 0: only asks whether the process exists
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def describe(holder: dict | None) -> str:
  if holder is None:
    return "an unknown run (unreadable lock)"
  return f"host {holder.get('host')}, pid {holder['pid']}, since {holder.get('since')}"


def _locked_message(workdir: Workdir, holder: dict | None) -> str:
  age = "" if holder is None else (
      f"; heartbeat {(_now() - holder['heartbeat']).total_seconds():.0f} s ago")
  return (f"{workdir} is being trained by another run: {describe(holder)}{age} "
          f"({workdir.lock_json}). Wait for it to end or stop it, or train in another "
          f"--workdir; a lock whose process has exited (same host) or whose heartbeat is older "
          f"than {STALE_S:.0f} s is taken over.")


class _LocalFile:
  """The lock as a local file. Its content is its version (each refresh changes the
  heartbeat). A conditional replace reads, compares and renames: two runs taking over one
  stale lock in the same instant could both succeed (each learns it at its next refresh)."""

  def __init__(self, path):
    self.path = os.fspath(path)

  def create(self, data: bytes) -> bytes | None:
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    try:
      fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
      return None
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    return data

  def read(self) -> tuple[bytes, bytes] | None:
    try:
      with open(self.path, "rb") as f:
        data = f.read()
    except FileNotFoundError:
      return None
    return data, data

  def replace(self, data: bytes, version: bytes) -> bytes | None:
    found = self.read()
    if found is None or found[1] != version:
      return None
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".",
                                     dir=os.path.dirname(self.path))
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(temporary, self.path)  # atomic: a reader sees the old record or the new one
    return data

  def delete(self, version: bytes) -> None:
    found = self.read()
    if found is not None and found[1] == version:
      os.remove(self.path)


class _GcsObject:
  """The lock as a Cloud Storage object; its generation is its version, and every change is
  conditional on it at the server (google-cloud-storage: default credentials, or the emulator
  STORAGE_EMULATOR_HOST names)."""

  def __init__(self, path):
    from google.api_core import exceptions  # pylint: disable=import-outside-toplevel
    from google.cloud import storage as gcs  # pylint: disable=import-outside-toplevel
    bucket, _, self.name = os.fspath(path).split("://", 1)[1].partition("/")
    self._bucket = gcs.Client().bucket(bucket)
    self._conflict = (exceptions.PreconditionFailed, exceptions.NotFound)

  def create(self, data: bytes) -> int | None:
    return self.replace(data, 0)  # generation 0: only if no such object exists

  def read(self) -> tuple[bytes, int] | None:
    for _ in range(3):  # rewritten between the metadata and the download: read again
      blob = self._bucket.get_blob(self.name)
      if blob is None:
        return None
      try:
        return blob.download_as_bytes(), blob.generation  # that generation, or NotFound
      except self._conflict:
        continue
    return None

  def replace(self, data: bytes, version: int) -> int | None:
    blob = self._bucket.blob(self.name)
    try:
      blob.upload_from_string(data, content_type="application/json",
                              if_generation_match=version)
    except self._conflict:
      return None
    return blob.generation

  def delete(self, version: int) -> None:
    try:
      self._bucket.blob(self.name).delete(if_generation_match=version)
    except self._conflict:
      pass
