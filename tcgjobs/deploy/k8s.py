"""Kubernetes manifests (a kustomize base) rendered from the job registry.

:func:`render_k8s` returns a :class:`K8sBundle`: its :meth:`~K8sBundle.files` are the kustomize
base committed in ``deploy/k8s/`` (``kubectl apply -k deploy/k8s``); its :meth:`~K8sBundle.stream`
is the same resources as one multi-document YAML for ``kubectl apply -f -``.

Layout of every pod: the card database and the state database (ledger, locks) live on the
``tcgjobs-database`` claim at /app/database, which is also TCGJOBS_TMPDIR; backups go to the
separate ``tcgjobs-backups`` claim at /app/backups, so losing one volume never loses both. The root
filesystem is read-only; /tmp is a small emptyDir. Secrets are files from the optional Secret
``tcgjobs-secrets`` under /run/secrets/tcgjobs, read through the ``<VARIABLE>_FILE`` settings the
operator enables in settings.env: no secret value ever appears in the rendered files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tcgjobs.config import Setting, Settings
from tcgjobs.deploy.plan import (
    CARD_DATA_REPOSITORY,
    CARD_DATA_SYNC_SECONDS,
    FAILED_JOBS_HISTORY,
    SUCCESSFUL_JOBS_HISTORY,
    TTL_AFTER_FINISHED_SECONDS,
    JobPlan,
    exit_policy,
    plan_all,
    secret_key,
    secret_settings,
)
from tcgjobs.parsers import format_value

APP = "tcgjobs"
CONTAINER = "tcgjobs"
SETTINGS_CONFIGMAP = "tcgjobs-settings"
SECRET = "tcgjobs-secrets"
DATABASE_CLAIM = "tcgjobs-database"
BACKUPS_CLAIM = "tcgjobs-backups"
DATABASE_SIZE = "10Gi"
BACKUPS_SIZE = "20Gi"
GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.4.0"
#: The image's non-root user (see the Dockerfile); git-sync runs as the same user.
RUN_AS = 10001

DATABASE_DIR = "/app/database"
BACKUP_DIR = "/app/backups"
SECRETS_DIR = "/run/secrets/tcgjobs"
CARD_DATA_DIR = "/card-data"
CARD_DATA_LINK = "pokemon-tcg-data"
CARD_DATA_SOURCE = f"{CARD_DATA_DIR}/git/{CARD_DATA_LINK}"

RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"},
             "limits": {"cpu": "1", "memory": "1Gi"}}
GIT_SYNC_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "512Mi"}}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}

HEADER = ("# Rendered by `tcgjobs deploy k8s` from the job registry; do not edit by hand.\n"
          "# Change settings (TCGJOBS_<JOB>_SCHEDULE, _ENABLED, _TIMEOUT, TCGJOBS_TIMEZONE) and render\n"
          "# again, or patch in a kustomize overlay. See docs/deploy.md.\n")


SQLITE_NOTE = (
    "#\n"
    "# SQLite volume: ReadWriteOnce on a node-local or block storage class (never NFS, CephFS,\n"
    "# SMB or another network filesystem: SQLite's locks and WAL need one kernel). Every tcgjobs\n"
    "# pod is scheduled onto the node holding it (podAffinity in the CronJobs); the platform's\n"
    "# APIs that read the same file must run on that node too.\n")
NOTES = {
    "pvc-database.yaml": (
        "#\n# The card database, the state database (ledger, locks) and TCGJOBS_TMPDIR: size it\n"
        "# at three times the card database (VACUUM and verification copy it).\n" + SQLITE_NOTE),
    "pvc-backups.yaml": (
        "#\n# Backups live on their own claim so that losing one volume never loses both the\n"
        "# database and its backups. Copy backups off the cluster too (docs/deploy.md).\n"),
}


def cronjob_name(job_name: str) -> str:
    """``tcgjobs-<job>``; Kubernetes allows at most 52 characters (it appends 11 for the Job)."""
    name = f"{APP}-{job_name}"
    if len(name) > 52:
        raise ValueError(f"CronJob name {name!r} is longer than 52 characters")
    return name


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": APP, "app.kubernetes.io/managed-by": "tcgjobs-deploy"}


def _pod_failure_policy() -> dict[str, Any]:
    policy = exit_policy()
    return {"rules": [
        # Evictions, preemption, node drains and shutdowns are not the job's fault.
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                              "values": list(policy.fail_at_once)}},
        {"action": "Count", "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                            "values": list(policy.retried)}},
    ]}


def _affinity() -> dict[str, Any]:
    """Every tcgjobs pod on the node where another one runs: the SQLite volumes are node-local.

    A pod that finds no other tcgjobs pod may go anywhere its volumes can be attached (the
    scheduler lets the first pod of a self-matching affinity term through).
    """
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": APP}},
        "topologyKey": "kubernetes.io/hostname",
    }]}}


def _git_sync_container() -> dict[str, Any]:
    return {
        "name": "card-data",
        "image": GIT_SYNC_IMAGE,
        "args": [f"--repo={CARD_DATA_REPOSITORY}", "--ref=HEAD", "--depth=1", "--one-time",
                 f"--root={CARD_DATA_DIR}/git", f"--link={CARD_DATA_LINK}", "--submodules=off",
                 "--git-gc=off", f"--sync-timeout={CARD_DATA_SYNC_SECONDS}s"],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": GIT_SYNC_RESOURCES,
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "card-data", "mountPath": CARD_DATA_DIR},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }


def _container(plan: JobPlan, image: str) -> dict[str, Any]:
    mounts = [
        {"name": "database", "mountPath": DATABASE_DIR},
        {"name": "backups", "mountPath": BACKUP_DIR},
        {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tcgjobs"],
        "args": ["run", plan.name, "--trigger", "schedule"],
        "envFrom": [{"configMapRef": {"name": SETTINGS_CONFIGMAP}}],
    }
    if plan.reads_card_data:
        container["env"] = [{"name": "TCGJOBS_DATA_SOURCE", "value": CARD_DATA_SOURCE}]
        mounts.append({"name": "card-data", "mountPath": CARD_DATA_DIR, "readOnly": True})
    container.update(resources=RESOURCES, securityContext=CONTAINER_SECURITY, volumeMounts=mounts)
    return container


def _volumes(plan: JobPlan) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "database", "persistentVolumeClaim": {"claimName": DATABASE_CLAIM}},
        {"name": "backups", "persistentVolumeClaim": {"claimName": BACKUPS_CLAIM}},
        {"name": "secrets", "secret": {"secretName": SECRET, "optional": True, "defaultMode": 0o440}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if plan.reads_card_data:
        volumes.append({"name": "card-data", "emptyDir": {"sizeLimit": "2Gi"}})
    return volumes


def cronjob(plan: JobPlan, image: str) -> dict[str, Any]:
    """The CronJob of one job."""
    labels = _labels(plan.name)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": plan.termination_grace_seconds,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": POD_SECURITY,
        "affinity": _affinity(),
    }
    if plan.reads_card_data:
        pod_spec["initContainers"] = [_git_sync_container()]
    pod_spec["containers"] = [_container(plan, image)]
    pod_spec["volumes"] = _volumes(plan)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": cronjob_name(plan.name), "labels": labels},
        "spec": {
            "schedule": plan.schedule,
            "timeZone": plan.timezone,
            "suspend": not plan.enabled,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": plan.starting_deadline_seconds,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": plan.retries,
                    "activeDeadlineSeconds": plan.active_deadline_seconds,
                    "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
                    "podFailurePolicy": _pod_failure_policy(),
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        },
    }


def _claim(name: str, size: str, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": _labels(component)},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def settings_env(plans: list[JobPlan], settings: Settings) -> list[tuple[str, str]]:
    """The non-secret settings every pod gets (the ConfigMap), in order."""
    values = [
        ("DATABASE_PATH", f"{DATABASE_DIR}/pokemon-data.sqlite3.db"),
        ("BACKUP_DIR", BACKUP_DIR),
        ("TCGJOBS_TMPDIR", DATABASE_DIR),
        ("TCGJOBS_TIMEZONE", settings.timezone.key),
        ("TCGJOBS_LOG_FORMAT", "json"),
    ]
    for plan in plans:
        values.extend(plan.overrides)
    for setting in needed_settings(plans, settings):  # what turns a job on, e.g. the off-site URL
        value = settings.get(setting.name)
        if value is not None:
            values.append((setting.variable, format_value(value)))
    return values


def needed_settings(plans: list[JobPlan], settings: Settings) -> list[Setting]:
    """The settings a job needs to be on (:attr:`tcgjobs.registry.Job.needs`)."""
    names = {plan.job.needs for plan in plans if plan.job.needs}
    return [setting for setting in settings.table if setting.name in names]


def _settings_env_text(values: list[tuple[str, str]], settings: Settings) -> str:
    lines = [HEADER.rstrip("\n"),
             "# The settings of every tcgjobs pod (ConfigMap tcgjobs-settings). Add any setting from",
             "# `tcgjobs config` here, e.g. POSTGRES_HOST=..., NOTIFICATIONS_ENABLED=true.",
             ""]
    lines += [f"{name}={value}" for name, value in values]
    lines += [f"# {s.variable}=...  (unset: its job stays suspended; render again once it is set)"
              for s in needed_settings(plan_all(settings), settings) if settings.get(s.name) is None]
    lines += ["",
              f"# Secrets: create the Secret {SECRET} with the keys you need (docs/deploy.md), then",
              "# uncomment the matching lines. Each key is mounted as a file and never appears here."]
    lines += [f"# {s.variable}_FILE={SECRETS_DIR}/{secret_key(s)}" for s in secret_settings(settings)]
    return "\n".join(lines) + "\n"


def _namespace(namespace: str) -> dict[str, Any]:
    labels = _labels("namespace")
    # The pods meet the "restricted" Pod Security Standard; enforce it.
    labels.update({"pod-security.kubernetes.io/enforce": "restricted",
                   "pod-security.kubernetes.io/warn": "restricted"})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML without anchors: each manifest reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


@dataclass(frozen=True)
class K8sBundle:
    """The rendered resources: ``(file name, document)`` pairs plus the settings file."""

    namespace: str
    resources: list[tuple[str, dict[str, Any]]]
    settings: list[tuple[str, str]]
    settings_text: str

    def kustomization(self) -> dict[str, Any]:
        return {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": self.namespace,
            "resources": [name for name, _ in self.resources],
            "configMapGenerator": [{"name": SETTINGS_CONFIGMAP, "envs": ["settings.env"],
                                    "options": {"labels": _labels("settings")}}],
        }

    def files(self) -> dict[str, str]:
        """File name → text of the kustomize base."""
        files = {"kustomization.yaml": HEADER + dump_yaml(self.kustomization()),
                 "settings.env": self.settings_text}
        for name, document in self.resources:
            files[name] = HEADER + NOTES.get(name, "") + dump_yaml(document)
        return dict(sorted(files.items()))

    def stream(self) -> str:
        """Every resource as one multi-document YAML stream, namespaced, with the ConfigMap inline."""
        configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": SETTINGS_CONFIGMAP, "labels": _labels("settings")},
                     "data": dict(self.settings)}
        documents = []
        for _, document in [("", configmap), *self.resources]:
            if document["kind"] != "Namespace":
                document = {**document, "metadata": {**document["metadata"], "namespace": self.namespace}}
            documents.append(dump_yaml(document))
        return HEADER + "---\n" + "---\n".join(documents)


def render_k8s(settings: Settings, image: str, namespace: str) -> K8sBundle:
    """The kustomize base for every registered job under ``settings``."""
    plans = plan_all(settings)
    values = settings_env(plans, settings)
    resources: list[tuple[str, dict[str, Any]]] = [
        ("namespace.yaml", _namespace(namespace)),
        ("pvc-database.yaml", _claim(DATABASE_CLAIM, DATABASE_SIZE, "database")),
        ("pvc-backups.yaml", _claim(BACKUPS_CLAIM, BACKUPS_SIZE, "backups")),
    ]
    resources += [(f"cronjob-{plan.name}.yaml", cronjob(plan, image)) for plan in plans]
    return K8sBundle(namespace=namespace, resources=resources, settings=values,
                     settings_text=_settings_env_text(values, settings))
