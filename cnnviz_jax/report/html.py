"""One self-contained HTML page: figures embedded as base64, no script, no external file.

Sections in the order a reader asks: data -> training -> results -> what the model
looks at -> is the explanation faithful. A partial run (training killed) carries a banner
and `data-status="partial"` on <body>. The footer holds the resolved config and the
library versions.
"""
import base64
import dataclasses
import datetime
import html
import importlib.metadata
import io
import json

from etils import epath
from PIL import Image

from cnnviz_jax import storage
from cnnviz_jax.report.display import Figure

SECTIONS = (("data", "Data"), ("training", "Training"), ("results", "Results"),
            ("looks", "What the model looks at"), ("masks", "Right for the right reasons?"),
            ("faithful", "Is the explanation faithful?"))
_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 20px}
header h1{margin:24px 0 4px;font-size:26px}.sub{color:#555;margin:0 0 12px}
nav a{margin-right:14px;color:#0b57d0;text-decoration:none}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;margin:18px 0;
padding:6px 20px 14px}
h2{font-size:20px;border-bottom:1px solid #eee;padding-bottom:4px}
figure{margin:18px 0}figure img{max-width:100%;height:auto;display:block;margin:auto}
figcaption{color:#444;font-size:13.5px;margin-top:6px}figcaption b{color:#1d1d1f}
.banner{padding:10px 14px;border-radius:6px;margin:12px 0;font-weight:600}
.partial{background:#fff4e5;border:1px solid #f0a030;color:#7a4300}
.note{color:#666;font-style:italic}
table{border-collapse:collapse;margin:10px 0;font-size:14px}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
footer{color:#555;font-size:13px;padding-bottom:30px}
pre{background:#f5f5f5;padding:10px;overflow:auto;max-height:420px;font-size:12px}
"""


@dataclasses.dataclass
class Section:
  key: str  # one of SECTIONS
  figures: list[Figure] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)  # plain text, e.g. "skipped: …"
  html: list[str] = dataclasses.field(default_factory=list)  # trusted snippets (tables)
  intro: str = ""


def versions() -> dict[str, str]:
  out = {}
  for name in ("cnnviz_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "matplotlib"):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = "not installed"
  return out


def image_tag(figure: Figure) -> str:
  """<img> with the file embedded as a data: URI and its pixel size."""
  data = figure.path.read_bytes()
  mime = _MIME.get(figure.path.suffix.lower(), "application/octet-stream")
  with Image.open(io.BytesIO(data)) as image:
    width, height = image.size
  encoded = base64.b64encode(data).decode("ascii")
  return (f'<img src="data:{mime};base64,{encoded}" width="{width}" height="{height}" '
          f'alt="{html.escape(figure.title)}" loading="eager">')


def figure_html(figure: Figure) -> str:
  return (f'<figure id="fig-{html.escape(figure.name)}">{image_tag(figure)}<figcaption>'
          f"<b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)}</figcaption>"
          "</figure>")


def table(header: list[str], rows: list[list], caption: str = "") -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                 for row in rows)
  cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
  return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def results_table(results: dict) -> str:
  """Accuracy, loss, top-5 and size per split of results.json."""
  rows = []
  for split, r in results["splits"].items():
    top5 = f"{r['top5_accuracy']:.2%}" if "top5_accuracy" in r else "–"
    rows.append([split, f"{r['accuracy']:.2%}", top5, f"{r['loss']:.4f}",
                 f"{r['num_examples']:,}"])
  return table(["split", "accuracy", "top-5", "loss", "images"], rows)


def render(title: str, sections: list[Section], *, subtitle: str = "",
           partial: str | None = None, config: dict | None = None,
           extra_footer: str = "") -> str:
  """The whole page. partial: the banner text of an unfinished run (None: finished)."""
  by_key = {s.key: s for s in sections}
  present = [(k, t) for k, t in SECTIONS if k in by_key]
  nav = " ".join(f'<a href="#{k}">{html.escape(t)}</a>' for k, t in present)
  parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>",
           f'<body data-status="{"partial" if partial else "complete"}"><header>'
           f"<h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(subtitle)}</p>"]
  if partial:
    parts.append(f'<div class="banner partial" id="partial-banner">Partial report: '
                 f"{html.escape(partial)}</div>")
  parts.append(f"<nav>{nav}</nav></header><main>")
  for key, heading in present:
    section = by_key[key]
    parts.append(f'<section id="{key}"><h2>{html.escape(heading)}</h2>')
    if section.intro:
      parts.append(f"<p>{html.escape(section.intro)}</p>")
    parts.extend(section.html)
    parts.extend(figure_html(f) for f in section.figures)
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in section.notes)
    parts.append("</section>")
  stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
  libs = ", ".join(f"{k} {v}" for k, v in versions().items())
  parts.append(f"</main><footer><p>Built {html.escape(stamp)} with {html.escape(libs)}.</p>")
  if extra_footer:
    parts.append(f"<p>{html.escape(extra_footer)}</p>")
  if config is not None:
    parts.append("<details id=\"config\"><summary>Resolved config</summary><pre>"
                 f"{html.escape(json.dumps(config, indent=1, default=str))}</pre></details>")
  parts.append("</footer></body></html>\n")
  return "".join(parts)


def write(path, page: str) -> epath.Path:
  """Writes atomically (a reader never sees half a report); local or at a URL."""
  path = storage.path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(path.suffix + ".tmp")
  tmp.write_text(page, encoding="utf-8")
  tmp.replace(path)
  return path
