"""Batch room of the local workspace: batch jobs with Azure ML batch deployment semantics.

* ``jobs.py`` - the public API the workspace uses: ``start_job``, ``run_job``, ``cancel_job``,
  ``read_progress`` / ``read_status``, ``read_logs``; the rules a job follows are in its docstring;
* ``plan.py`` - pure: the job's description (``BatchJobRuntime``, ``BatchJobProgress``) and the
  decisions (mini-batches, retry / isolate / fail, ``error_threshold``, stale status);
* ``files.py`` - the job folder: ``job.json``, ``status.json`` (atomic), pid file, logs;
* ``runner.py`` - the detached job process: worker supervision, scheduling, ``append_row`` output;
* ``worker.py`` - one worker, run BY PATH with the deployment environment's interpreter (no
  ``mlops`` there, so it is self-contained: standard library only).

This package imports nothing on purpose (the job process imports ``runner.py`` itself).
"""
