"""Vendor the KubeRay v1.7.0 CRD schemas, tightened so a misspelt field fails.

The CRDs' OpenAPI schemas leave ``additionalProperties`` unset, so JSON Schema accepts any
unknown key (the API server prunes it silently). This script copies the schemas this
project validates against from ``../shared/k8s-schemas`` (see SOURCES.md) and adds
``additionalProperties: false`` to every object schema that lists ``properties`` and sets
neither ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields``. The output
is committed; rerun after updating the sources:

    python k8s/schemas/tighten.py [SOURCE_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "k8s-schemas"
NAMES = ("raycluster-ray.io-v1.json", "rayjob-ray.io-v1.json", "raycronjob-ray.io-v1.json")


def tighten(node):
    """Return ``node`` with ``additionalProperties: false`` on every closed object schema."""
    if isinstance(node, list):
        return [tighten(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: tighten(v) for k, v in node.items()}
    if (
        "properties" in out
        and isinstance(out["properties"], dict)
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def main(source: Path = DEFAULT_SOURCE) -> None:
    for name in NAMES:
        schema = json.loads((source / name).read_text())
        text = json.dumps(tighten(schema), separators=(",", ":"), sort_keys=True)
        (HERE / name).write_text(text + "\n")
        print(f"{name}: {len(text)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
