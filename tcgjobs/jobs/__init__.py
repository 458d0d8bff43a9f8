"""One implementation module per job: ``run(context) -> JobResult``, nothing else.

The jobs are declared in :mod:`tcgjobs.registry`; a module here is imported only when its job
runs (:meth:`tcgjobs.registry.Job.load`), so importing this package imports none of them.
"""
