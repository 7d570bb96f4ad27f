"""The release's settings as typed values, each with the reader of its file: ``rollout.yml``
(``rollout``, ``served``), ``profile.yml`` (``load_profile``), ``gates.yml`` (``gates``) and the
durations in them - what ``mlops.config`` reads for ``mlops.yaml`` and ``mlops.release`` interprets.
Data and its parsing only - no decisions - so the configuration never imports the release that reads it."""
