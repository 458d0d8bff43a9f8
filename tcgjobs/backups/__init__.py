"""Backups of the card database: creating, verifying, listing, rotating and restoring them."""
