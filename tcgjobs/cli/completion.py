"""Shell completion of values: job names and backup file names.

Commands, subcommands (``run``'s jobs) and options complete from the command tree itself; these
functions complete argument values. They run only in a completion request (the shell's Tab), so
what they need is imported inside them: a plain run never loads it.
"""

from __future__ import annotations

import os


def job_names(incomplete: str) -> list[str]:
    """Registered jobs starting with ``incomplete``."""
    from tcgjobs.registry import all_jobs

    return [name for name in all_jobs() if name.startswith(incomplete)]


def backup_names(incomplete: str) -> list[str]:
    """Backups and safety snapshots in BACKUP_DIR starting with ``incomplete``, newest first.
    Nothing when the settings are invalid or the directory cannot be read: completion is quiet."""
    from tcgjobs.backups.names import is_restorable_name
    from tcgjobs.config import load_settings
    from tcgjobs.errors import ConfigError

    try:
        directory = load_settings(os.environ).backup_dir
        names = os.listdir(directory)
    except (ConfigError, OSError):
        return []
    return sorted((name for name in names if name.startswith(incomplete) and is_restorable_name(name)),
                  reverse=True)
