"""Health checks: named checks with ok / warning / critical levels, and their recorded results."""
