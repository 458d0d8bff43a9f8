"""Deploy files rendered from the job registry: Kubernetes CronJobs (a kustomize base) and a crontab.

The committed ``deploy/k8s/`` and ``deploy/crontab`` are exactly what ``tcgjobs deploy k8s`` and
``tcgjobs deploy crontab`` print for the default settings; a test fails when they drift.

Import the submodules directly: ``tcgjobs.deploy.k8s`` needs PyYAML, which the CLI loads only when
``deploy k8s`` runs.
"""
