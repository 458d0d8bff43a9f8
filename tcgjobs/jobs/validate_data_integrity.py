"""validate-data-integrity: prove the card data is whole and consistent."""

from tcgjobs.registry import declare

JOB = declare(
    name="validate-data-integrity",
    help="Read-only proof that the card database is whole and consistent with its source.",
    schedule="0 6 * * 0",
    timeout=600,
)
