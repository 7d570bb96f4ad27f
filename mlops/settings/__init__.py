"""The release's settings as typed values: what ``mlops.config`` builds from ``rollout.yml``,
``gates.yml`` and the durations in them, and what ``mlops.release`` interprets. Data and its
parsing only - no decisions - so the configuration never imports the release that reads it."""
