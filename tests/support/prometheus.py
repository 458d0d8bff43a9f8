"""Real Prometheus, Pushgateway and node_exporter (Debian's packages) on free loopback ports.

Each server gets its own data directory under the test's tmp_path and is stopped afterwards.
Prometheus scrapes both every second with ``honor_labels: true`` (as the README tells operators)
and evaluates the rendered rules every second.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.conftest import require_tool
from tests.health.support import free_port

TOOLS = {"prometheus": "prometheus", "pushgateway": "prometheus-pushgateway",
         "node_exporter": "prometheus-node-exporter"}


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _wait_ready(url: str, process: subprocess.Popen, log: Path, deadline: float = 30) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            _get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {deadline}s: {log.read_text()[-2000:]}")


@contextmanager
def _server(args: list[str], ready: str, log: Path) -> Iterator[None]:
    with log.open("w") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Stack:
    """The running servers: where tcgjobs writes and pushes, and Prometheus' HTTP API."""

    textfile_dir: Path
    pushgateway_url: str
    prometheus_url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar) ``expr`` evaluates to now. Raises on a PromQL error."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer = json.loads(_get(url))
        if answer["status"] != "success":
            raise AssertionError(f"{expr}: {answer}")
        result = answer["data"]["result"]
        return result if answer["data"]["resultType"] == "vector" else [{"metric": {}, "value": result}]

    def rules(self) -> list[dict[str, Any]]:
        answer = json.loads(_get(f"{self.prometheus_url}/api/v1/rules"))
        return [rule for group in answer["data"]["groups"] for rule in group["rules"]]

    def wait_for(self, expr: str, predicate, deadline: float = 60) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``predicate(result)`` holds; the last result either way."""
        until = time.monotonic() + deadline
        result = self.query(expr)
        while not predicate(result) and time.monotonic() < until:
            time.sleep(0.25)
            result = self.query(expr)
        return result


def _prometheus_config(rules: Path, pushgateway: str, node_exporter: str) -> str:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pushgateway]}]},
            {"job_name": "node", "honor_labels": True, "static_configs": [{"targets": [node_exporter]}]},
        ],
    }
    return json.dumps(config)  # JSON is YAML


@contextmanager
def monitoring_stack(directory: Path, rules: Path) -> Iterator[Stack]:
    """Pushgateway, node_exporter (textfile collector only) and Prometheus with ``rules``."""
    binaries = {name: require_tool(tool) for name, tool in TOOLS.items()}
    textfile = directory / "textfile"
    textfile.mkdir(parents=True)
    push, node, prom = (f"127.0.0.1:{free_port()}" for _ in range(3))
    config = directory / "prometheus.yml"
    config.write_text(_prometheus_config(rules, push, node))
    with ExitStack() as stack:
        # Debian's pushgateway persists to /var/lib/prometheus/pushgateway.data by default: every
        # test's gateway (anyone's on this machine) would load what earlier ones were pushed.
        stack.enter_context(_server([binaries["pushgateway"], f"--web.listen-address={push}",
                                     f"--persistence.file={directory / 'pushgateway.data'}"],
                                    f"http://{push}/-/ready", directory / "pushgateway.log"))
        stack.enter_context(_server(
            [binaries["node_exporter"], f"--web.listen-address={node}", "--collector.disable-defaults",
             "--collector.textfile", f"--collector.textfile.directory={textfile}"],
            f"http://{node}/metrics", directory / "node_exporter.log"))
        stack.enter_context(_server(
            [binaries["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={directory / 'tsdb'}",
             f"--web.listen-address={prom}"],
            f"http://{prom}/-/ready", directory / "prometheus.log"))
        yield Stack(textfile, f"http://{push}", f"http://{prom}")
