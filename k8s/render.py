"""A tiny kustomize renderer for this folder's kustomizations, for offline tests.

No kustomize binary is needed to validate the manifests: this renders ``k8s/base`` and
``k8s/overlays/*`` the way ``kubectl kustomize`` does, for exactly the features they use,
and rejects any other kustomization field so a new feature cannot be silently ignored:

- ``resources``: YAML files (multi-document) or folders holding a kustomization.yaml;
- ``configMapGenerator`` with ``name`` and ``files`` only, and ``generatorOptions`` with
  ``disableNameSuffixHash: true`` (required: no hash suffixes, no reference rewriting)
  and optional ``labels``;
- ``namespace``: set on every rendered document (all of ours are namespaced);
- ``images``: ``name`` -> ``newName``/``newTag`` on the ``image`` of every item of any
  ``containers`` or ``initContainers`` list, in any kind (kustomize's legacy image filter);
- ``patches`` with ``target: {kind, name}`` and an inline JSON 6902 ``patch``
  (ops ``add``, ``replace``, ``remove``).

Usage: ``python k8s/render.py k8s/overlays/dev`` prints the rendered YAML stream.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "patches",
    "configMapGenerator",
    "generatorOptions",
}


def render(folder: str | Path) -> list[dict]:
    """The documents ``kubectl kustomize folder`` would print, in order."""
    folder = Path(folder)
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(k) - SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict] = []
    for res in k.get("resources", []):
        path = folder / res
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    docs += _generate(folder, k)
    for patch in k.get("patches", []):
        _patch(docs, patch)
    for image in k.get("images", []):
        for d in docs:
            _set_images(d, image)
    if "namespace" in k:
        for d in docs:
            d["metadata"]["namespace"] = k["namespace"]
    return docs


def _generate(folder: Path, k: dict) -> list[dict]:
    gens = k.get("configMapGenerator", [])
    if not gens:
        return []
    opts = k.get("generatorOptions", {})
    if opts.get("disableNameSuffixHash") is not True or set(opts) - {
        "disableNameSuffixHash",
        "labels",
    }:
        raise ValueError(f"{folder}: generatorOptions must be disableNameSuffixHash: true")
    out = []
    for g in gens:
        if set(g) - {"name", "files"}:
            raise ValueError(f"{folder}: configMapGenerator supports name and files only")
        meta = {"name": g["name"]}
        if opts.get("labels"):
            meta["labels"] = dict(opts["labels"])
        data = {Path(f).name: (folder / f).read_text() for f in g["files"]}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return out


def _patch(docs: list[dict], patch: dict) -> None:
    target = patch["target"]
    if set(patch) != {"target", "patch"} or set(target) != {"kind", "name"}:
        raise ValueError(f"only inline JSON 6902 patches with target kind+name: {patch}")
    hits = [
        d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]
    ]
    if not hits:
        raise ValueError(f"patch target not found: {target}")
    for d in hits:
        for op in yaml.safe_load(patch["patch"]):
            apply_op(d, op)


def apply_op(doc: dict, op: dict) -> None:
    """Apply one RFC 6902 ``add``/``replace``/``remove`` operation to ``doc`` in place."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    last, kind = parts[-1], op["op"]
    if isinstance(parent, list):
        if kind == "add":
            idx = len(parent) if last == "-" else int(last)
            if idx > len(parent):
                raise IndexError(op["path"])
            parent.insert(idx, copy.deepcopy(op["value"]))
            return
        idx = int(last)
        if not 0 <= idx < len(parent):
            raise IndexError(op["path"])
    elif kind in ("replace", "remove") and last not in parent:
        raise KeyError(f"{op['path']} does not exist")
    else:
        idx = last
    if kind in ("add", "replace"):
        parent[idx] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[idx]
    else:
        raise ValueError(f"unsupported op {kind}")


def _set_images(node, image: dict) -> None:
    if isinstance(node, list):
        for x in node:
            _set_images(x, image)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for c in value:
                    c["image"] = _new_image(c["image"], image)
            _set_images(value, image)


def _new_image(ref: str, image: dict) -> str:
    name, tag = ref, ""
    if "@" in ref:
        name, tag = ref.split("@", 1)
        tag = "@" + tag
    elif ":" in ref.rsplit("/", 1)[-1]:
        name, tag = ref.rsplit(":", 1)
        tag = ":" + tag
    if name != image["name"]:
        return ref
    if "newTag" in image:
        tag = ":" + str(image["newTag"])
    return image.get("newName", name) + tag


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(sys.argv[1]), sort_keys=False), end="")
