"""A tiny demo run (train + report) for the report tests, and a check in headless Chromium."""
import html
import json
import pathlib
import re
import shutil
import subprocess

import helpers
import runs

# configs/demo.py on the train tests' 256 synthetic images of 3 classes, 2 epochs: seconds
TINY = runs.tiny_flags(epochs=2)


def image_files(directory: pathlib.Path) -> list[pathlib.Path]:
  """Two random RGB files of different sizes and formats: wide.png (80x48), tall.jpg (40x90)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  paths = []
  for name, (h, w) in (("wide.png", (48, 80)), ("tall.jpg", (90, 40))):
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(directory / name)
    paths.append(directory / name)
  return paths


def train_demo(workdir, data_dir) -> subprocess.CompletedProcess:
  """The README's demo command with the tiny overrides: trains, evaluates, writes the report."""
  return helpers.python("-m", "cnnviz_jax.main", "--config", helpers.ROOT / "configs/demo.py",
                        f"--workdir={workdir}", f"--config.data.data_dir={data_dir}", *TINY)


# --- headless Chromium --------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--hide-scrollbars"]

# Injected at the top of a copy of the page: records every error (script, console.error,
# resources that fail to load), and once the page has loaded writes what it found
# into the DOM, where --dump-dom reads it (no DevTools protocol needed).
_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window ? 'failed to load ' + (t.tagName || '') + ' ' +
    String(t.src || t.href || '').slice(0, 80) : 'error: ' + e.message);
}, true);
var __console_error = console.error;
console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
  __console_error.apply(console, arguments);
};
window.addEventListener('load', function () {
  // after 'load' every <img> has been fetched and decoded, or has failed (naturalWidth 0)
  var images = Array.prototype.slice.call(document.images);
  var out = {errors: window.__errors, status: document.body.dataset.status,
    sections: Array.prototype.map.call(document.querySelectorAll('section'),
                                       function (s) { return s.id; }),
    images: images.map(function (i) {
      return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight};
    })};
  var pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
  for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
    path = shutil.which(name)
    if path:
      return path
  return None


def browser_check(page: pathlib.Path, work: pathlib.Path, screenshot: pathlib.Path) -> dict:
  """Opens `page` in headless Chromium: -> {'errors', 'status', 'sections', 'images'}; also
  saves a full-width screenshot of the page itself."""
  browser = chromium()
  probe = work / "probed.html"
  text = page.read_text(encoding="utf-8")
  probe.write_text(text.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
  base = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}"]
  dom = subprocess.run(base + ["--virtual-time-budget=15000",
                               "--run-all-compositor-stages-before-draw", "--dump-dom",
                               probe.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
  # [^>]*: a page's own scripts may add attributes (pydata-sphinx-theme: tabindex on a <pre>)
  match = re.search(r'<pre id="probe-result"[^>]*>(.*?)</pre>', dom.stdout, re.S)
  if not match:
    raise AssertionError(f"the probe wrote nothing (chromium rc {dom.returncode}):\n"
                         f"{dom.stderr[-3000:]}")
  subprocess.run(base + ["--window-size=1280,2400", f"--screenshot={screenshot}",
                         page.as_uri()], capture_output=True, timeout=120, check=False)
  return json.loads(html.unescape(match.group(1)))
