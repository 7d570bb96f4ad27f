"""The release's steps, one module a concept: ``prepare`` (register, environment), ``deploy``,
``loadtest``, ``gate``, ``promote`` (promote, rollback) and ``batch`` (batch-prepare, batch).

Each ``step_*`` function is idempotent and usable alone (the CLI's step commands and the GitHub
jobs call them one at a time); the state between them is the release record
(``mlops.release.record``, opened by ``mlops.release.current``). ``mlops.release.pipeline`` runs
them in order.
"""
