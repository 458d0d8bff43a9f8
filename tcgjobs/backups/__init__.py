"""Backups of the card database, one module per concern (docs/backups.md describes the behaviour).

* :mod:`~tcgjobs.backups.names`: what a backup, a safety snapshot and their sidecars are called,
  and what a name says (time, compression).
* :mod:`~tcgjobs.backups.catalog`: the backups in a local directory: listing with a cheap status,
  reading and writing the ``.sha256`` and manifest sidecars, removing a backup, orphaned sidecars.
* :mod:`~tcgjobs.backups.create`: taking a backup (snapshot, integrity check, compress, publish,
  prove), the free-space check and DiskFull.
* :mod:`~tcgjobs.backups.verify`: proving a backup (read back, checksum, decompress, integrity
  check, row counts) and recording the result in its manifest.
* :mod:`~tcgjobs.backups.restore`: putting a verified backup in place, as a new file or over an
  existing database.
* :mod:`~tcgjobs.backups.overwrite`: restoring over a database other processes may be writing,
  with the safety snapshot taken under the same write lock, and the check of the result.
* :mod:`~tcgjobs.backups.compression`: gzip and zstd streams, hashing while writing or reading.
* :mod:`~tcgjobs.backups.retention`: the calendar retention policy rotate-backups applies.
* :mod:`~tcgjobs.backups.tempfiles`: temporary files (names, private creation, atomic
  publication) and the leftovers of interrupted runs.

``names``, ``compression`` and ``retention`` work on names, streams and dates only; the other
modules work on local files (rename, fsync, ``os.scandir``). This package imports nothing, so a
command loads only the modules it uses.
"""
