"""Registry room of the local workspace: its state and assets.

* ``store.py`` - the SQLite store (WAL, transactions, a file lock for first opens): the truth;
* ``artifacts.py`` - content-addressed files (model and code versions) under the workspace folder;
* ``models.py`` - model registration (the same bytes never make a new version) and lookup;
* ``environments.py`` - environment versions as real virtualenvs built from a conda file's
  ``python`` and ``pip:`` entries, content-hashed and reused.
"""
