"""Deploy files rendered from the job registry: Kubernetes CronJobs (a kustomize base) and a crontab.

The committed ``deploy/k8s/`` and ``deploy/crontab`` are exactly what ``tcgjobs deploy k8s`` and
``tcgjobs deploy crontab`` print for the default settings; a test fails when they drift.
"""

from tcgjobs.deploy.crontab import render_crontab
from tcgjobs.deploy.k8s import K8sBundle, render_k8s
from tcgjobs.deploy.plan import JobPlan, exit_policy, plan_all, plan_job

__all__ = ["JobPlan", "K8sBundle", "exit_policy", "plan_all", "plan_job", "render_crontab",
           "render_k8s"]
