"""replicate-to-primary: upsert the SQLite card data into the primary PostgreSQL."""

from tcgjobs.registry import Resource, declare

JOB = declare(
    name="replicate-to-primary",
    help="Replicate sets and cards into the primary PostgreSQL, exactly and incrementally.",
    schedule="0 4 * * *",
    timeout=1800,
    depends_on=("sync-missing-cards",),
    writes=frozenset({Resource.PRIMARY}),
)
