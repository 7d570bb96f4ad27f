"""The Azure ML adapter: the ``Workspace`` port on ``azure.ai.ml.MLClient``.

This package is the only place that imports the Azure SDK clients (``azure.ai.ml``, ``azure.identity``,
``azure.core``, ``azure.monitor.query``). Pure decisions (versions, states, lock format, AutoML best trial, error kinds)
live in ``mlops.workspace.azure_decisions`` and the Azure Monitor queries in ``mlops.workspace.azure_monitor``
(both outside the package, so the local workspace can use them without importing the SDK); this package
does the I/O and translates every SDK exception into ``mlops.errors`` at the boundary (``calls._call``),
with the fix in the message. Its modules, by operation group:

* ``client``: the workspace target, ``MLClient``; ``AzureWorkspace`` composes the groups;
* ``credential``: which credential signs in (GitHub OIDC in Actions, else ``DefaultAzureCredential``);
* ``calls``: the boundary (``_call``, ``_lro``, retries, waits, error translation) and ``AzureOptions``
  (how it waits and retries, its clocks and HTTP post: one typed object, set whole or by name);
* ``assets``: models, AutoML jobs (import of the best trial), environments;
* ``online``: online endpoints, deployments, traffic, keys, invoke, metrics, logs;
* ``batch``: batch endpoints, deployments, jobs, outputs, logs;
* ``lock``: the release lock.

How it maps the port onto Azure ML, and the traps it avoids:

* **Workspace** from ``azureml://subscriptions/<id>/resourceGroups/<rg>/workspaces/<name>`` or
  ``AZURE_SUBSCRIPTION_ID`` / ``AZURE_RESOURCE_GROUP`` / ``AZUREML_WORKSPACE``; the credential
  (``credential``) is ``ClientAssertionCredential`` with a fresh GitHub ID token per token request in
  Actions (OIDC), else ``DefaultAzureCredential`` (``az login`` on a laptop, managed identity).
  Nothing touches the network until the first operation.
* **Models** are registered with an explicit next version and the tag ``mlops.content_hash``; the
  same bytes return the existing version. ``register_model_from_job`` takes the best trial of an
  AutoML job by its primary metric and registers its ``outputs/model.pt`` (or ``model.pkl``),
  conda file and scoring file as one folder.
* **Environments** are content-addressed the same way (image + conda file). Azure builds the
  image the first time a deployment uses a version (minutes); every deployment references the
  pinned ``azureml:name:version``, so an unchanged spec never triggers a rebuild.
* **Online endpoints are only ever written read-modify-write**: a PUT of an endpoint object with
  empty ``traffic`` zeroes the live traffic, so every update starts from ``get``. Traffic and mirror
  updates wait until the endpoint *reports* the new split. Deployment creation waits on the LRO;
  a failure fetches the container logs (inference server, then storage initializer) into
  ``DeploymentFailedError``. HTTP 409 "operation in progress" and 429 are retried with backoff;
  before writing to an endpoint (or a deployment on it) the adapter waits until no operation is in
  flight there (``calls._wait_idle``): Azure runs one at a time and refuses the rest for minutes.
* **Invoking** posts the raw body ourselves with the endpoint key. The SDK's ``invoke`` re-parses
  the body as JSON and, in azure-ai-ml 1.35, mutates the class-level ``DEFAULT_HEADER`` dict, so an
  ``azureml-model-deployment`` header (and the key) leaks into every later call in the process.
  For the same reason batch invokes always name their deployment (the endpoint's default is
  resolved first): the leaked header would otherwise silently target the last deployment named.
* **Batch**: ``ModelBatchDeployment`` with ``ModelBatchDeploymentSettings`` (instance count goes
  to ``resources``); ``invoke(deployment_name=..., input=Input(type="uri_folder", path=<local dir>))``
  (the SDK uploads the folder); the output is the job's ``score`` output; the default deployment
  is set read-modify-write on the endpoint's ``defaults.deployment_name``.
* **Deployment metrics** come from Azure Monitor: ``LogsQueryClient.query_workspace`` on the
  ``AmlOnlineEndpointTrafficLog`` table of the Log Analytics workspace ``MLOPS_LOG_ANALYTICS_WORKSPACE_ID``
  (the queries, the ingestion delay and why not platform metrics: ``mlops.workspace.azure_monitor``).
  Without that workspace the metrics are reported incomplete, so no health check can pass on them.
* **Release lock**: an infinite lease on the blob ``mlops-release-locks/<endpoint>`` of the
  workspace's blob store ``workspaceblobstore``, holder and start in its metadata (``lock``: why a blob and not the
  endpoint - the release identity may not write the endpoint - and the lease rules). The storage
  service grants a lease atomically; in GitHub Actions the workflow's ``concurrency`` group is the
  first guard and the lease the second, which also stops a laptop release. An endpoint tag
  ``mlops.release-lock`` left by an older version is honoured read-only.
"""

from mlops.workspace.azure.calls import HttpPost, _urllib_post
from mlops.workspace.azure.client import AzureWorkspace, target_from_environment

__all__ = ["AzureWorkspace", "HttpPost", "_urllib_post", "target_from_environment"]
