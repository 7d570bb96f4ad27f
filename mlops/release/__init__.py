"""The release: register -> environment -> deploy -> loadtest -> gate -> promote -> batch refresh.

Pure decisions (``slots``, ``rollout``, ``gates``, ``promote.judge_health``, ``batch.check_output``
/ ``prune_plan``, ``report``) are apart from the steps that act through the ``Workspace`` port
(``pipeline``, ``promote``, ``batch``, ``quality``) and the one subprocess (``loadtest``: locust).
State between steps lives in the release record (``record``). See ``pipeline`` for the order and the
resume rules.
"""
