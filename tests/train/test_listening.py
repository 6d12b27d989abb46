"""A one-process run listens on loopback only (jax's coordination service, which the
preemption sync needs, would otherwise listen on every interface)."""
import ipaddress
import os
import re
import signal
import time

import pytest

import runs


def _listening_addresses(pid: int) -> set[str]:
  """Local addresses of the TCP sockets process `pid` listens on, e.g. '127.0.0.1:44141':
  /proc/PID/net/tcp* rows in state LISTEN (0A) whose inode is one of the process's fds."""
  inodes = set()
  for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
      match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
    except OSError:  # closed meanwhile
      continue
    if match:
      inodes.add(match.group(1))
  found = set()
  for table in ("tcp", "tcp6"):
    for row in open(f"/proc/{pid}/net/{table}", encoding="ascii").read().splitlines()[1:]:
      fields = row.split()
      if fields[3] == "0A" and fields[9] in inodes:
        found.add(_address(fields[1]))
  return found


def _address(hex_address: str) -> str:
  """'0100007F:AC6D' -> '127.0.0.1:44141': the kernel prints the address as 32-bit words in
  host (little-endian) order, the port in hex."""
  host, port = hex_address.split(":")
  raw = bytes.fromhex(host)
  raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
  return f"{ipaddress.ip_address(raw)}:{int(port, 16)}"


def _is_loopback(address: str) -> bool:
  ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
  mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, an IPv6 socket bound to IPv4
  return ip.is_loopback or bool(mapped and mapped.is_loopback)


def test_address_decoding():
  assert _address("0100007F:AC6D") == "127.0.0.1:44141"
  assert _address("00000000000000000000000001000000:0050") == "::1:80"
  assert _address("0000000000000000FFFF00000100007F:CDBD") == "::ffff:7f00:1:52669"
  assert _is_loopback("::ffff:7f00:1:52669") and _is_loopback("::1:80")
  assert not _is_loopback("::0:35413") and not _is_loopback("0.0.0.0:80")


@pytest.mark.slow  # a training run
def test_one_process_run_listens_on_loopback_only(tmp_path, data_dir):
  workdir = tmp_path / "run"
  process = runs.run_main(workdir, data_dir, wait=False)
  seen, deadline = set(), time.time() + 300
  try:  # until the first epoch's checkpoint: devices, collectives and the service are all up
    while not any((workdir / "checkpoints").glob("[0-9]*")):
      assert process.poll() is None, process.communicate()[0][-3000:]
      assert time.time() < deadline, "no checkpoint after 5 minutes"
      seen |= _listening_addresses(process.pid)
      time.sleep(0.05)
    seen |= _listening_addresses(process.pid)
  finally:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
  assert seen, "the coordination service was never seen listening"
  assert all(_is_loopback(a) for a in seen), seen
