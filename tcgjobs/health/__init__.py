"""Health checks: named checks with ok / warning / critical levels (recorded by :mod:`tcgjobs.db.state`)."""
