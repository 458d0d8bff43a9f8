"""A stand-in for ``kubectl`` that runs the documented restore drill's Jobs on this machine.

It understands the five calls the drill makes, against the manifests ``tcgjobs deploy k8s``
rendered into ``$FAKE_KUBECTL_RENDERED``:

* ``create job NAME --from=cronjob/CRONJOB --dry-run=client -o json``: the Job kubectl would build
  from the CronJob's ``jobTemplate``;
* ``apply -f -``: runs the Job's container as a local process, with the rendered ``settings.env``
  (the ConfigMap its ``envFrom`` names) and the container's ``env``, every ``/app/`` path moved under
  ``$FAKE_KUBECTL_ROOT`` (the volumes); records its exit code and output under that root;
* ``wait --for=condition=complete job/NAME``: exit 0 when the container exited 0; otherwise
  kubectl's answer for a Job that failed (it never becomes complete): exit 1;
* ``logs job/NAME``: the container's output;
* ``delete job NAME...``.

Nothing else of the command line is interpreted: the drill's own ``jq`` filters shape the Job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

VOLUME_PREFIX = "/app/"


def _root() -> Path:
    return Path(os.environ["FAKE_KUBECTL_ROOT"])


def _moved(value: str) -> str:
    return value.replace(VOLUME_PREFIX, f"{_root()}{VOLUME_PREFIX}")


def _rendered(kind: str, name: str) -> dict[str, Any]:
    for path in sorted(Path(os.environ["FAKE_KUBECTL_RENDERED"]).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == kind and document["metadata"]["name"] == name:
                return dict(document)
    raise SystemExit(f'Error from server (NotFound): {kind.lower()}s.batch "{name}" not found')


def _settings() -> dict[str, str]:
    lines = (Path(os.environ["FAKE_KUBECTL_RENDERED"]) / "settings.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#") and "=" in line]
    return {key: _moved(value) for key, value in pairs}


def create_job(name: str, cronjob: str) -> None:
    template = _rendered("CronJob", cronjob)["spec"]["jobTemplate"]
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                        "labels": template["metadata"].get("labels", {})},
           "spec": template["spec"]}
    print(json.dumps(job))


def apply() -> None:
    job = json.load(sys.stdin)
    name = job["metadata"]["name"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = [_moved(part) for part in container.get("command", []) + container.get("args", [])]
    environment = {"PATH": os.environ["PATH"], **_settings(),
                   **{item["name"]: _moved(item["value"]) for item in container.get("env", [])}}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    record = _root() / "jobs" / name
    record.mkdir(parents=True, exist_ok=True)
    (record / "exit").write_text(str(done.returncode))
    (record / "log").write_text(done.stdout + done.stderr)
    print(f"job.batch/{name} created")


def wait(name: str) -> int:
    if int((_root() / "jobs" / name / "exit").read_text()) == 0:
        print(f"job.batch/{name} condition met")
        return 0
    print(f"error: timed out waiting for the condition on jobs/{name}", file=sys.stderr)
    return 1


def main(args: list[str]) -> int:
    if args[:2] != ["-n", "tcgjobs"]:
        raise SystemExit(f"fake kubectl: the drill names the namespace first, not {args}")
    words = [arg for arg in args[2:] if not arg.startswith("-")]
    verb = words[0]
    if verb == "create":
        source = next(arg for arg in args if arg.startswith("--from=cronjob/"))
        create_job(words[2], source.split("/", 1)[1])
    elif verb == "apply":
        apply()
    elif verb == "wait":
        return wait(words[1].removeprefix("job/"))
    elif verb == "logs":
        print((_root() / "jobs" / words[1].removeprefix("job/") / "log").read_text(), end="")
    elif verb == "delete":
        print("\n".join(f'job.batch "{name}" deleted' for name in words[2:]))
    else:
        raise SystemExit(f"fake kubectl: unsupported call {args}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
