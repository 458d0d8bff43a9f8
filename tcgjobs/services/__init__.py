"""I/O services: locks, Slack, metrics, backups, PostgreSQL."""
