"""``herbi-serve``: open an exported web page in one command, served on 127.0.0.1 only.

    herbi-serve runs/latest            # serves runs/latest/export/web-int8 (or web/)
    herbi-serve runs/latest/export     # the same
    herbi-serve site/ --port 9000      # a folder holding index.html itself

Browsers refuse to load WebAssembly from ``file://`` and compile it fastest when it comes with
the ``application/wasm`` type, which not every Python version maps; this server sends the right
types and ``Cache-Control: no-cache``, so a re-exported model is never served stale. Tests and
the browser benchmark start the same server in a thread (:func:`start_server`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import click

from herbi.common.errors import ExportError

HOST = "127.0.0.1"  # the page is for this machine's browser; nothing else may reach it
WEB_FOLDERS = ("web-int8", "web", "web-float32")  # what herbi-export may have named the page


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
        ".css": "text/css",
        ".html": "text/html",
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        """Quiet: the terminal shows the URL and errors, not one line per file fetched."""


def find_web_dir(path: Path) -> Path:
    """The page folder for a run folder, an export folder or the page folder itself.

    In a run or export folder the int8 page is preferred, as ``--format web`` defaults to it.
    """
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"{path}: no such folder")
    candidates = [base / name for base in (path / "export", path) for name in WEB_FOLDERS]
    for candidate in [*candidates, path]:
        if (candidate / "index.html").is_file():
            return candidate
    raise ExportError(
        f"{path}: no web page here (looked for export/{{{','.join(WEB_FOLDERS)}}}/ and "
        "index.html); run `herbi-export --format web` first"
    )


def make_server(web_dir: Path, port: int) -> ThreadingHTTPServer:
    """Bind ``HOST:port`` (0: a free port) serving ``web_dir``; ExportError when it cannot."""
    handler = functools.partial(_Handler, directory=str(web_dir))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise ExportError(f"--port {port}: cannot listen on {HOST} ({e.strerror or e})") from None


@contextmanager
def start_server(web_dir: Path, port: int = 0) -> Iterator[str]:
    """Serve ``web_dir`` on 127.0.0.1 from a background thread while the ``with`` block runs
    (port 0: any free port); the block gets the server's URL."""
    httpd = make_server(Path(web_dir), port)
    thread = threading.Thread(target=httpd.serve_forever, name="herbi-serve", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
def main(folder: Path, port: int) -> None:
    """Serve the web page exported into FOLDER (a run, an export folder or the page itself)."""
    try:
        web_dir = find_web_dir(folder)
        httpd = make_server(web_dir, port)
    except ExportError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Serving {web_dir} at http://{HOST}:{httpd.server_address[1]}/ (Ctrl+C to stop)")
    with httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped")
