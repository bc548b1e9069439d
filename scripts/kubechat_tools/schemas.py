"""The JSON Schemas kubeconform validates against, prepared once into .cache/schemas/.

Kubernetes: the strict schemas shipped in the pinned kubernetes-validate wheel (generated from the
upstream OpenAPI documents), with their "/api/_definitions.json" references pointed at the local file.
CRDs: the pinned CRDs' openAPIV3Schema turned into strict JSON Schema.

Strict: an object that lists its properties rejects any other field, unless the CRD says
x-kubernetes-preserve-unknown-fields or gives additionalProperties itself (what the API server
prunes silently, we reject, so typos in custom resources are caught before a sync).
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

from .crds import load_crds
from .paths import CACHE, CRDS_FILE


SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")


def _strict(node):
    """A CRD's OpenAPI schema made strict for kubeconform (unknown fields refused, nullable and int-or-string
    as JSON Schema says them). Walks schemas, not data: a field named `properties` (External Secrets' CRD
    allowlist rules have one) is a field, not a schema keyword."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strict(schema) for name, schema in value.items()}
        elif key in SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_strict(schema) for schema in value]
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _strict(value)
        else:
            out[key] = value
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def kubernetes_schemas(version: str, folder: Path = CACHE / "schemas" / "kubernetes") -> Path:
    """Return the folder holding v<version>-local-strict/<kind>-<group>-<version>.json."""
    import kubernetes_validate

    name = f"v{version}-local-strict"
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / name
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''} "
                         f"has no schemas for Kubernetes {version}")
    target = folder / name
    stamp = target / ".complete"
    if not stamp.exists():
        target.mkdir(parents=True, exist_ok=True)
        for path in source.glob("*.json"):
            # Each file has an https $id; point its references at the local definitions file instead.
            text = path.read_text().replace('"/api/_definitions.json#', f'"{(target / "_definitions.json").as_uri()}#')
            (target / path.name).write_text(text)
        stamp.write_text(str(source))
    return folder


def build_schemas(folder: Path = CACHE / "schemas" / "crds") -> Path:
    """Write <group>/<kind>_<version>.json for every version of every pinned CRD; return the folder.
    Rebuilt only when crds.yaml or this converter changes."""
    key = hashlib.sha256(CRDS_FILE.read_bytes() + Path(__file__).read_bytes()).hexdigest()
    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == key:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    for crd in load_crds():
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = copy.deepcopy(version.get("schema", {}).get("openAPIV3Schema", {}))
            schema = _strict(schema)
            props = schema.setdefault("properties", {})
            props["metadata"] = {"type": "object"}
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            target = folder / group / f"{kind}_{version['name']}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema, indent=1, sort_keys=True))
    stamp.write_text(key)
    return folder
