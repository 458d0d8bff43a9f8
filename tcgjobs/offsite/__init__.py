"""Off-site copies of the backups in S3-compatible object storage.

Only the off-site commands and the upload-backups job import the modules that load boto3
(:mod:`tcgjobs.offsite.store` and what builds on it); :mod:`tcgjobs.offsite.location` and
:mod:`tcgjobs.offsite.settings` are plain Python, so the settings table can declare the off-site
settings without any other command paying for boto3's start-up.
"""
