"""sync-missing-cards: load every missing or changed card into SQLite."""

from tcgjobs.registry import Resource, declare

JOB = declare(
    name="sync-missing-cards",
    help="Insert every missing and update every changed card, one transaction per set.",
    schedule="0 3 * * *",
    timeout=1800,
    depends_on=("sync-missing-sets",),
    writes=frozenset({Resource.CARD_DB}),
)
