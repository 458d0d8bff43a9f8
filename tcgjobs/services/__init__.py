"""I/O services: locks, Slack, metrics, PostgreSQL. (Backups have their own package, tcgjobs.backups.)"""
