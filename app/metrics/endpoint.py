"""The HTTP side of `--metrics`: /metrics in the Prometheus text format, or OpenMetrics when the scraper's
`Accept` header asks for it, written by prometheus_client from the feed's newest frame.

A scrape never triggers a refresh: it converts the newest frame (each frame once, whatever the number of scrapes)
and returns. Each request has its own thread and a socket timeout, so a scraper that stalls mid-request holds only
its own thread, for at most REQUEST_TIMEOUT seconds, and never the collection.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

from netscope import __version__
from netscope.collectors.session.metrics import MetricsFrame
from netscope.widgets.formatting import printable

LABEL_MAX = 128  # characters of a label value from the system (a program's name, a container's)
REQUEST_TIMEOUT = 10.0  # seconds a scraper may take to send its request and read the answer
DEFAULT_HOST = "127.0.0.1"
PARSER = "python"  # how sockets are read; issue 14 may add a compiled path, and this label will say which


class AddressError(ValueError):
    """An --metrics address that cannot be used: the message says why and what to write."""


def parse_address(text: str) -> tuple[str, int]:
    """`9850`, `:9850`, `127.0.0.1:9850`, `[::1]:9850`, `0.0.0.0:9850`, `localhost:9850` -> (host, port); the host
    is 127.0.0.1 when none is given, so that nothing is served beyond this machine unless asked."""
    text = text.strip()
    if not text:
        raise AddressError("empty address: give PORT or ADDRESS:PORT, e.g. 127.0.0.1:9850")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise AddressError(f"{text!r}: an IPv6 address is written [ADDRESS]:PORT, e.g. [::1]:9850")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{text!r}: {host!r} is not an IPv6 address") from None
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise AddressError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:9850")
        host = host or DEFAULT_HOST
    else:
        host, port_text = DEFAULT_HOST, text
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(f"{text!r}: the port must be a number from 1 to 65535 (0: any free port)")
    if len(host) > 253 or any(char.isspace() or not char.isprintable() for char in host):
        raise AddressError(f"{text!r}: not a host name or address")
    return host, int(port_text)


def label_text(text: str) -> str:
    """A label value from text the system chose: escaped as on screen, at most LABEL_MAX characters."""
    shown = printable(text)
    return shown if len(shown) <= LABEL_MAX else shown[: LABEL_MAX - 1] + "…"


def build_labels() -> dict[str, str]:
    return {"version": __version__, "python": ".".join(map(str, sys.version_info[:3])), "parser": PARSER}


class FrameCollector:
    """prometheus_client's view of the feed: the newest frame's families, converted once per frame."""

    def __init__(self, newest: Callable[[], MetricsFrame | None]) -> None:
        self._newest = newest
        self._converted: tuple[MetricsFrame | None, list[Metric]] = (None, [])
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        frame = self._newest()
        if frame is None:
            return []
        with self._lock:  # concurrent scrapes of a new frame convert it once
            if self._converted[0] is not frame:
                self._converted = (frame, list(_metrics(frame)))
            return self._converted[1]


def _metrics(frame: MetricsFrame) -> Iterator[Metric]:
    for part in frame.families:
        family, labels = part.family, list(part.family.labels)
        metric: Metric
        if family.kind == "info":
            for values in part.samples:
                info = InfoMetricFamily(family.name, family.help)
                info.add_metric([], dict(zip(family.labels, values, strict=True)))
                yield info
            continue
        if family.kind == "counter":
            metric = CounterMetricFamily(family.name, family.help, labels=labels)
        else:
            metric = GaugeMetricFamily(family.name, family.help, labels=labels)
        for values, value in part.samples.items():
            metric.add_metric(list(values), value)
        yield metric


class _QuietHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT  # a stalled scraper's thread ends after this; see the module docstring

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a scrape every 15 s would fill the terminal or the journal."""


def _routes(metrics_app: Callable[..., Any]) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            result: list[bytes] = metrics_app(environ, start_response)
            return result
        if path == "/":
            body = b"<html><body><h1>netscope</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n"
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"netscope serves /metrics\n"]

    return app


class MetricsServer:
    """The HTTP server, in a daemon thread; `address` the one it is bound to (with the real port when 0 was
    asked for)."""

    def __init__(self, host: str, port: int, newest: Callable[[], MetricsFrame | None]) -> None:
        """Binds at once: raises AddressError when the address cannot be used (taken, not this machine's)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FrameCollector(newest))
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise AddressError(f"{host}: {error.strerror}") from None
        family, _, _, _, sockaddr = infos[0]

        class Server(ThreadingWSGIServer):
            address_family = family

        try:
            self._httpd: WSGIServer = make_server(
                str(sockaddr[0]), port, _routes(make_wsgi_app(registry)), Server, handler_class=_QuietHandler)
        except OSError as error:
            why = error.strerror or str(error)
            hint = " (another program listens there: choose another port)" if error.errno == 98 else ""
            raise AddressError(f"cannot listen on {_shown(host, port)}: {why}{hint}") from None
        bound = self._httpd.server_address
        self.address = _shown(str(bound[0]), int(bound[1]))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="netscope-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which never started otherwise
            self._httpd.shutdown()
        self._httpd.server_close()


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
