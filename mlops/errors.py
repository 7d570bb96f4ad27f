"""The project's exception tree. Every error a user can meet is one of these.

Vendor errors (azure-core, sqlite3, subprocess, HTTP) are translated at the boundary
that meets them, so callers only ever catch these classes. Messages name the resource
and the fix. The CLI maps each class to an exit code (DESIGN.md section 4)::

    MlopsError                      exit 1 unless a subclass says otherwise
    +-- UsageError                  exit 2: bad flags, detected before anything is touched
    |   +-- ConfigError             exit 2: a file/key/value in mlops.yaml or a YAML spec is wrong
    +-- WorkspaceError              exit 1: the workspace refused or failed an operation
    |   +-- NotFoundError           a model, environment, endpoint, deployment or job does not exist
    |   +-- RuleViolation           exit 2: an Azure ML rule would be broken (names, traffic, mirror,
    |   |                           deployment count); nothing was changed
    |   +-- ConflictError           another operation holds the resource (a release lock, an Azure
    |   |                           "operation in progress"); retry later
    |   +-- AuthError               credentials missing or lacking a role / federated credential
    |   +-- EnvironmentBuildError   a serving environment could not be built
    |   +-- DeploymentFailedError   a deployment did not become ready; carries its log tail
    |   +-- BatchJobFailedError     a batch job failed or exceeded its error threshold
    +-- ReleaseFailed               exit 1: a gate failed or a step failed and was rolled back
    +-- Inconclusive                exit 3: too little evidence to judge; paused, nothing promoted
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(MlopsError):
    exit_code = 2


class ConfigError(UsageError):
    """A configuration or spec file is invalid. The message names the file, the key and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class WorkspaceError(MlopsError):
    pass


class NotFoundError(WorkspaceError):
    pass


class RuleViolation(WorkspaceError):
    exit_code = 2


class ConflictError(WorkspaceError):
    pass


class AuthError(WorkspaceError):
    pass


class EnvironmentBuildError(WorkspaceError):
    pass


class DeploymentFailedError(WorkspaceError):
    def __init__(self, message: str, *, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(message + (f"\n--- log tail ---\n{log_tail}" if log_tail else ""))


class BatchJobFailedError(WorkspaceError):
    pass


class ReleaseFailed(MlopsError):
    exit_code = 1


class Inconclusive(MlopsError):
    exit_code = 3
