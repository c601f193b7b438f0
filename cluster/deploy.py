"""How code and config reach a Kubernetes (KubeRay) cluster.

- **Code**: the image built from ``k8s/Dockerfile`` has the project installed; every Ray
  pod (head, CPU and GPU workers) runs it, so RayJob entrypoints are plain ``mespot ...``.
- **Config**: the ConfigMap ``mespot-pipeline`` reaches the pods as environment variables
  (``MESPOT_*``: corpus, stores, fps, model) and ``mespot-feature-config`` is mounted at
  :data:`CONFIG_DIR`; entrypoints pass ``--config`` :data:`FEATURE_CONFIG_PATH`. Job
  drivers run on the head (RayJob ``submissionMode: HTTPMode``), whose shell expands
  ``${MESPOT_...}`` from those variables.
- **Credentials**: never in manifests or the image. S3 keys come from the Secret
  :data:`S3_SECRET` (``envFrom``, optional) or the service account's cloud role; the Ray
  token from the Secret KubeRay creates for ``authOptions: {mode: token}``.
- **Trying code without a new image**: :func:`submit_command` builds a ``ray job submit``
  whose runtime_env (:func:`runtime_env`) uploads this checkout's packages, which then
  shadow the installed ones on the driver and the workers.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG_DIR = "/etc/mespot"
FEATURE_CONFIG_PATH = f"{CONFIG_DIR}/feature_config.json"
PIPELINE_CONFIGMAP = "mespot-pipeline"
FEATURE_CONFIGMAP = "mespot-feature-config"
S3_SECRET = "mespot-s3"
PACKAGES = ("schemas", "pipeline", "cluster")
REPO = Path(__file__).resolve().parents[1]


def runtime_env(repo: Path | None = REPO, env_vars: dict[str, str] | None = None) -> dict:
    """A Ray runtime_env for jobs on the cluster's image.

    With ``repo``, the project's packages from that checkout are uploaded as
    ``py_modules`` (they come first on the Python path of the driver and the workers);
    ``repo=None`` runs the installed code. ``env_vars`` must not hold credentials: the
    runtime_env is stored in the cluster's job table in clear.
    """
    env: dict = {}
    if repo is not None:
        env["py_modules"] = [str(Path(repo) / p) for p in PACKAGES]
        env["excludes"] = ["__pycache__", "*.pyc"]
    if env_vars:
        secret = [k for k in env_vars if "SECRET" in k.upper() or "TOKEN" in k.upper()]
        if secret:
            raise ValueError(f"credentials do not belong in a runtime_env: {secret}")
        env["env_vars"] = dict(env_vars)
    return env


def submit_command(
    argv: list[str],
    address: str = "http://localhost:8265",
    repo: Path | None = REPO,
) -> list[str]:
    """``ray job submit`` of ``mespot ARGV...`` to the dashboard at ``address``.

    With local code (``repo``), the entrypoint is ``python -m cluster.cli`` so the uploaded
    packages are the ones that run. Reach the dashboard with
    ``kubectl port-forward svc/mespot-head-svc 8265`` and set ``RAY_AUTH_TOKEN``.
    """
    entry = ["mespot"] if repo is None else ["python", "-m", "cluster.cli"]
    cmd = ["ray", "job", "submit", "--address", address]
    env = runtime_env(repo)
    if env:
        cmd += ["--runtime-env-json", json.dumps(env)]
    return [*cmd, "--", *entry, *argv]
