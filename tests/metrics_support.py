"""Scraping netscope's metrics endpoint in tests: over HTTP, parsed with prometheus_client's own parser."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from netscope.collectors.session.metrics import MetricsFrame

NETSCOPE = [sys.executable, "-m", "netscope"]
Samples = dict[tuple[tuple[str, str], ...], float]


def scrape(url: str, accept: str = "") -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers.get("Content-Type", ""), answer.read().decode("utf-8")


def samples(text: str, name: str) -> Samples:
    """Every sample of one family (by the sample's name), keyed by its sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def value(found: Samples, **labels: str) -> float | None:
    return found.get(tuple(sorted(labels.items())))


def frame_samples(frame: MetricsFrame, name: str) -> dict[tuple[str, ...], float]:
    return next(part.samples for part in frame.families if part.family.name == name)


class Headless:
    """`netscope --metrics 127.0.0.1:0 --no-ui` as users run it: its URL read from the line it says on stderr."""

    def __init__(self, *extra: str, command: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        """`command`: what runs netscope (default this Python's `-m netscope`), e.g. behind setpriv."""
        self.process = subprocess.Popen(
            [*(command or NETSCOPE), "--no-config", "--metrics", "127.0.0.1:0", "--no-ui", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        found = re.search(r"serving (http://\S+/metrics)", line)
        if not found:
            self.process.kill()
            raise AssertionError(f"no address said: {line!r} {self.process.stderr.read()}")
        self.url = found.group(1)

    def until(self, condition: str, check: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = scrape(self.url)[1]
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"{condition} not seen within {timeout} s; last scrape:\n{text[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.stderr is not None:
                self.process.stderr.close()


