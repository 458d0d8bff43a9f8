"""The state database (``tcgjobs-state.sqlite3``): the run ledger, health checks and alert state.

Everything that touches the file goes through this package, and callers import from here:

* :func:`open_state` opens it for writing (creating and migrating it); :func:`open_view` opens it
  read-only (:class:`StateView`: runs, recorded checks, silences), a missing file reading empty.
* :class:`Ledger` writes ``runs``: only the runner makes one, and a job that needs run history
  reads it through the view in its context.
* :class:`HealthStore` writes ``health_checks`` (the health check, on its own connection);
  :class:`AlertStore` keeps ``alert_state``, ``alert_events`` and ``silences`` for the alerting
  policy (:mod:`tcgjobs.services.alerting`) and ``tcgjobs notify``.

Inside: ``schema`` (migrations and peewee models), ``records`` (what is read, as dataclasses),
``database`` (opening, the view), ``ledger``, ``health``, ``alerts`` (the stores).
"""

from tcgjobs.db.state.alert_store import AlertStore
from tcgjobs.db.state.database import StateView, open_state, open_view
from tcgjobs.db.state.health_store import CheckOutcome, HealthStore
from tcgjobs.db.state.ledger import Ledger
from tcgjobs.db.state.records import (
                                      FAILURE_STATUSES,
                                      AlertSubject,
                                      LevelChange,
                                      RunRecord,
                                      RunStatus,
                                      Silence,
                                      StoredCheck,
)
from tcgjobs.db.state.tables import LABEL, STATE_MIGRATIONS, StateDatabase

__all__ = [
    "FAILURE_STATUSES", "LABEL", "STATE_MIGRATIONS", "AlertStore", "AlertSubject", "CheckOutcome",
    "HealthStore", "Ledger", "LevelChange", "RunRecord", "RunStatus", "Silence", "StateDatabase",
    "StateView", "StoredCheck", "open_state", "open_view",
]
