"""sync-missing-sets: load new and changed sets from the local card data into SQLite."""

from tcgjobs.registry import Resource, declare

JOB = declare(
    name="sync-missing-sets",
    help="Insert new and update changed sets from the card data into the card database.",
    schedule="0 2 * * *",
    timeout=300,
    writes=frozenset({Resource.CARD_DB}),
)
