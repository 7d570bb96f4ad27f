"""The Azure CLI v2 YAML specs the release reads (``endpoints/``, ``environments/``, ``jobs/``), read the
way Azure ML reads them into the port's typed specs: endpoints, deployment templates, environments
and the AutoML job. ``mlops.config`` ties them together from ``mlops.yaml``."""
