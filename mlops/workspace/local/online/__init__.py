"""Online serving room of the local workspace: the host process and everything it runs.

* ``desired_state.py`` - the store-to-host seam: ``EndpointRuntime`` / ``DeploymentRuntime`` (what
  the workspace wants served), ``DeploymentStatus`` (what the host reports) and the ``HostClient``
  protocol;
* ``client.py`` - ``LocalHostClient``, the workspace's ``HostClient``: starts and talks to the host;
* ``control.py`` - the control channel's contract and wire forms (``host.json``, token, JSON codec);
* ``host.py`` - the long-lived host process (``python -m mlops.workspace.local.online.host``);
* ``router.py`` - one HTTP listener per endpoint, applying ``routing.py``'s pure decisions (keys,
  traffic, mirror, header targeting, limits);
* ``upstream.py`` - the router's HTTP client to deployment instances, and the probes;
* ``supervisor.py`` - one deployment's ``azmlinfsrv`` instances: start, probe, restart, capacity.

This package imports nothing on purpose: ``host.py`` is run with ``-m`` and must not be imported
before it runs.
"""
