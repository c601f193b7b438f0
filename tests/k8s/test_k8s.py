"""Offline checks of the Kubernetes deployment in k8s/ (no cluster, no kustomize binary).

Every document of every kustomization (base, overlays rendered by k8s/render.py), the
on-demand RayJobs and the RayCronJob variant is validated: ray.io kinds against the
KubeRay v1.7.0 CRD schemas tightened with additionalProperties: false (k8s/schemas),
built-in kinds with kubernetes-validate in strict mode. Every `mespot ...` command line
in them must parse with the real CLI, with ${MESPOT_*} taken from the rendered ConfigMap.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cluster import deploy
from cluster.cli import build_parser
from pipeline.vision.config import FeatureConfig

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
K8S_VERSION = "1.33.0"
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/prod")
SCHEMA_FILES = {
    "RayCluster": "raycluster-ray.io-v1.json",
    "RayJob": "rayjob-ray.io-v1.json",
    "RayCronJob": "raycronjob-ray.io-v1.json",
}
VAR = re.compile(r"\$\{(\w+)\}")

_spec = importlib.util.spec_from_file_location("k8s_render", K8S / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)


def _load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _loose_docs() -> list[tuple[str, dict]]:
    """Documents created on demand, not by `kubectl apply -k`."""
    files = sorted((K8S / "base" / "jobs").glob("*.yaml")) + sorted((K8S / "extras").glob("*.yaml"))
    return [(str(f.relative_to(K8S)), d) for f in files for d in _load(f)]


@functools.cache
def _rendered_once() -> dict[str, list[dict]]:
    return {k: render.render(K8S / k) for k in KUSTOMIZATIONS}


def _rendered() -> dict[str, list[dict]]:
    return copy.deepcopy(_rendered_once())


def _all_docs() -> list[tuple[str, dict]]:
    out = [
        (f"{k}:{d['kind']}/{d['metadata']['name']}", d) for k, ds in _rendered().items() for d in ds
    ]
    out += _loose_docs()
    # The RayJob template the CronJob mounts is a document too.
    for k, ds in _rendered().items():
        for d in ds:
            if d["kind"] == "ConfigMap":
                for key, text in d.get("data", {}).items():
                    if key.endswith(".yaml"):
                        out += [
                            (f"{k}:{d['metadata']['name']}/{key}", x)
                            for x in yaml.safe_load_all(text)
                            if x
                        ]
    return out


@functools.cache
def _validator(name: str):
    schema = json.loads((K8S / "schemas" / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError when ``doc`` is not a valid object of its kind."""
    if doc["apiVersion"].startswith("ray.io/"):
        error = jsonschema.exceptions.best_match(
            _validator(SCHEMA_FILES[doc["kind"]]).iter_errors(doc)
        )
        if error is not None:
            raise error
        # The CRD leaves metadata open: check it as ObjectMeta on a carrier object.
        carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
        kubernetes_validate.validate(carrier, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


ALL = _all_docs()


@pytest.mark.parametrize("doc", [d for _, d in ALL], ids=[i for i, _ in ALL])
def test_manifest_is_valid(doc):
    validate(doc)


def test_everything_is_covered():
    kinds = {d["kind"] for _, d in ALL}
    assert {"RayCluster", "RayJob", "RayCronJob", "CronJob", "ConfigMap"} <= kinds
    jobs = {d["metadata"]["labels"]["mespot/job"] for _, d in ALL if d["kind"] == "RayJob"}
    assert jobs == {"extract", "ingest", "train", "spot"}


RAYCLUSTER = next(d for d in _load(K8S / "base" / "raycluster.yaml"))
CRONJOB = next(d for d in _load(K8S / "base" / "cronjob.yaml"))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["spec"].__setitem__("headGroupSpecc", d["spec"].pop("headGroupSpec")),
        lambda d: d["spec"]["workerGroupSpecs"][0].__setitem__(
            "rayStartParam", d["spec"]["workerGroupSpecs"][0].pop("rayStartParams")
        ),
        lambda d: d["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].__setitem__(
            "resource", {}
        ),
        lambda d: d["spec"]["workerGroupSpecs"][0].__setitem__("replicas", "two"),
        lambda d: d["spec"].__setitem__("enableInTreeAutoscaling", "yes"),
    ],
    ids=[
        "misspelt-headGroupSpec",
        "misspelt-rayStartParams",
        "misspelt-container-field",
        "replicas-string",
        "bool-string",
    ],
)
def test_ray_kind_errors_are_caught(edit):
    doc = copy.deepcopy(RAYCLUSTER)
    validate(doc)
    edit(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["spec"].__setitem__("schedul", d["spec"].pop("schedule")),
        lambda d: d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].__setitem__(
            "comand", ["true"]
        ),
        lambda d: d["spec"].__setitem__("successfulJobsHistoryLimit", "three"),
        lambda d: d["metadata"].__setitem__("lables", {}),
    ],
    ids=["misspelt-schedule", "misspelt-container-field", "int-string", "misspelt-metadata"],
)
def test_builtin_kind_errors_are_caught(edit):
    doc = copy.deepcopy(CRONJOB)
    validate(doc)
    edit(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_misspelt_ray_metadata_is_caught():
    doc = next(d for _, d in ALL if d["kind"] == "RayJob")
    doc = copy.deepcopy(doc)
    doc["metadata"]["generatename"] = doc["metadata"].pop("generateName")
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def _commands(node):
    """Every `mespot ...` command line in a document: RayJob entrypoints, container
    command/args (as one line)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "entrypoint" and isinstance(value, str):
                yield value
            elif key == "containers":
                for c in value:
                    line = shlex.join([*c.get("command", []), *c.get("args", [])])
                    if line.startswith("mespot"):
                        yield line
            else:
                yield from _commands(value)
    elif isinstance(node, list):
        for x in node:
            yield from _commands(x)


def _env_per_namespace() -> dict[str, dict[str, str]]:
    return {
        k: next(d for d in ds if d["metadata"]["name"] == deploy.PIPELINE_CONFIGMAP)["data"]
        for k, ds in _rendered().items()
    }


def _parse(line: str, env: dict[str, str]):
    missing = set(VAR.findall(line)) - set(env)
    assert not missing, f"{line}: {missing} not in the ConfigMap {deploy.PIPELINE_CONFIGMAP}"
    argv = shlex.split(VAR.sub(lambda m: env[m.group(1)], line))
    assert argv[0] == "mespot", line
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as e:
        pytest.fail(f"`{line}` does not parse with the mespot CLI (exit {e.code})")


COMMANDS = sorted({c for _, d in ALL for c in _commands(d)})


def test_entrypoints_found():
    assert {shlex.split(c)[1] for c in COMMANDS} == {"extract", "ingest", "train", "spot"}


@pytest.mark.parametrize("line", COMMANDS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_entrypoint_parses_with_the_cli(line, kustomization):
    args = _parse(line, _env_per_namespace()[kustomization])
    if getattr(args, "config", None):
        assert args.config == deploy.FEATURE_CONFIG_PATH
    # Job drivers run on the head; its env and mount must provide what they read.
    cluster = next(d for d in _rendered()[kustomization] if d["kind"] == "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    c = head["containers"][0]
    assert {"configMapRef": {"name": deploy.PIPELINE_CONFIGMAP}} in c["envFrom"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == deploy.CONFIG_DIR)
    vol = next(v for v in head["volumes"] if v["name"] == mount["name"])
    assert vol["configMap"]["name"] == deploy.FEATURE_CONFIGMAP


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_feature_config_is_a_feature_config(kustomization):
    cm = next(
        d for d in _rendered()[kustomization] if d["metadata"]["name"] == deploy.FEATURE_CONFIGMAP
    )
    name = Path(deploy.FEATURE_CONFIG_PATH).name
    FeatureConfig.from_json(cm["data"][name])


def test_rayjobs_reach_the_cluster_and_expand_on_the_head():
    for _, d in ALL:
        spec = {"RayJob": lambda x: x["spec"], "RayCronJob": lambda x: x["spec"]["jobTemplate"]}
        if d["kind"] in spec:
            s = spec[d["kind"]](d)
            assert s["clusterSelector"] == {"ray.io/cluster": RAYCLUSTER["metadata"]["name"]}
            # ${MESPOT_*} is expanded by the driver's shell on the head, not in a submitter pod.
            assert s["submissionMode"] == "HTTPMode"


def test_cron_submits_the_ingest_rayjob():
    ingest_text = (K8S / "base" / "jobs" / "ingest.yaml").read_text()
    ingest = yaml.safe_load(ingest_text)
    for ds in _rendered().values():
        cron = next(d for d in ds if d["kind"] == "CronJob")
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        cmd = pod["containers"][0]["command"]
        assert cmd[:3] == ["kubectl", "create", "-f"]
        mount = pod["containers"][0]["volumeMounts"][0]
        vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        cm = next(
            d
            for d in ds
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == vol["configMap"]["name"]
        )
        assert cm["data"][Path(cmd[3]).name] == ingest_text
        assert Path(cmd[3]).parent == Path(mount["mountPath"])
        role = next(d for d in ds if d["kind"] == "Role")
        assert role["rules"] == [
            {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create"]}
        ]
        assert pod["serviceAccountName"] == role["metadata"]["name"]
    raycron = _load(K8S / "extras" / "raycronjob.yaml")[0]
    assert raycron["spec"]["jobTemplate"] == ingest["spec"]
    assert raycron["spec"]["schedule"] == CRONJOB["spec"]["schedule"]


def _containers(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                yield from value
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for x in node:
            yield from _containers(x)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_requests_limits_and_no_inline_credentials(kustomization):
    docs = _rendered()[kustomization]
    containers = list(_containers(docs))
    assert len(containers) == 4  # head, cpu and gpu workers, cron submitter
    for c in containers:
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][part]), c["name"]
        for e in c.get("env", []):
            assert "value" not in e or not re.search("KEY|SECRET|TOKEN|PASSWORD", e["name"])
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    assert cluster["spec"]["autoscalerOptions"]["resources"]["limits"]
    ray_pods = list(_containers(cluster))
    for c in ray_pods:
        assert {"secretRef": {"name": deploy.S3_SECRET, "optional": True}} in c["envFrom"]
    gpu = cluster["spec"]["workerGroupSpecs"][1]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "mespot-gpu" in gpu["image"]
    text = yaml.safe_dump_all(docs)
    assert not re.search(r"AKIA[0-9A-Z]{12}|aws_secret_access_key", text, re.I)


def test_overlays_differ_where_they_should():
    r = _rendered()
    dev, prod = ({d["kind"]: d for d in r[k]} for k in ("overlays/dev", "overlays/prod"))
    assert dev["RayCluster"]["metadata"]["namespace"] == "mespot-dev"
    assert prod["RayCluster"]["metadata"]["namespace"] == "mespot"
    assert dev["RayCluster"]["spec"]["workerGroupSpecs"][1]["maxReplicas"] == 0
    assert prod["RayCluster"]["spec"]["workerGroupSpecs"][1]["minReplicas"] == 1
    head = prod["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] == "registry.example.org/mespot:0.1.0"


def test_dockerfile():
    text = (K8S / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("0", "root")
    assert not re.search(r"^(ENV|ARG)\s+\S*(SECRET|TOKEN|PASSWORD|ACCESS_KEY)", text, re.M | re.I)
    assert "tensorflow[and-cuda]==${TF_VERSION}" in text
    ray = re.search(r"^ARG RAY_VERSION=(\S+)", text, re.M).group(1)
    assert RAYCLUSTER["spec"]["rayVersion"] == ray
    assert "pose_predictor_model_location" in text
    ignore = (K8S / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[1] == "*" and "!.env" not in ignore


def test_renderer_rejects_what_it_does_not_support(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(ValueError, match="namePrefix"):
        render.render(tmp_path)


def test_renderer_ops_and_images():
    doc = {"a": {"b": [1, 2], "c~/d": 1}}
    render.apply_op(doc, {"op": "add", "path": "/a/b/-", "value": 3})
    render.apply_op(doc, {"op": "add", "path": "/a/b/0", "value": 0})
    render.apply_op(doc, {"op": "replace", "path": "/a/c~0~1d", "value": 2})
    render.apply_op(doc, {"op": "remove", "path": "/a/b/1"})
    assert doc == {"a": {"b": [0, 2, 3], "c~/d": 2}}
    with pytest.raises(KeyError):
        render.apply_op(doc, {"op": "replace", "path": "/a/x", "value": 1})
    img = {"name": "r:5000/m", "newName": "q/m", "newTag": "t"}
    assert render._new_image("r:5000/m", img) == "q/m:t"
    assert render._new_image("r:5000/m:1", img) == "q/m:t"
    assert render._new_image("r:5000/mm:1", img) == "r:5000/mm:1"
    assert render._new_image("r:5000/m@sha256:ab", {"name": "r:5000/m", "newName": "z"}) == (
        "z@sha256:ab"
    )


def test_schemas_are_the_tightened_sources():
    source = ROOT.parent / "shared" / "k8s-schemas"
    if not source.is_dir():
        pytest.skip("KubeRay schema sources not present")
    spec = importlib.util.spec_from_file_location("tighten", K8S / "schemas" / "tighten.py")
    tighten = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tighten)
    for name in SCHEMA_FILES.values():
        want = tighten.tighten(json.loads((source / name).read_text()))
        assert json.loads((K8S / "schemas" / name).read_text()) == want


def test_runtime_env_and_submit_command():
    assert deploy.runtime_env(None) == {}
    env = deploy.runtime_env(env_vars={"MESPOT_FPS": "30"})
    assert [Path(p).name for p in env["py_modules"]] == list(deploy.PACKAGES)
    assert all(Path(p).is_dir() for p in env["py_modules"])
    with pytest.raises(ValueError):
        deploy.runtime_env(env_vars={"AWS_SECRET_ACCESS_KEY": "x"})
    cmd = deploy.submit_command(["train", "s3://b/store", "--epochs", "5"])
    sep = cmd.index("--")
    assert cmd[:3] == ["ray", "job", "submit"]
    assert json.loads(cmd[cmd.index("--runtime-env-json") + 1])["py_modules"]
    assert cmd[sep + 1 : sep + 4] == ["python", "-m", "cluster.cli"]
    assert build_parser().parse_args(cmd[sep + 4 :]).epochs == 5
    plain = deploy.submit_command(["spot", "m", "i", "o"], repo=None)
    assert plain[plain.index("--") + 1 :] == ["mespot", "spot", "m", "i", "o"]
