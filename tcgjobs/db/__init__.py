"""Databases: the platform's card database (SQLite) and tcgjobs' own state database."""
