"""The overlays' values, checked at render before anything is written: every rendered object against its
Kubernetes or CRD schema (unknown fields refused, with the allowed ones and the closest; Kubernetes
quantities parsed; basic types), the settings ConfigMaps against the app contract
(kubechat_deploy/app/contract.py), and every overlay YAML file parsed on its own so a syntax error names the
file and line. Each problem names the overlay file and line where the value was set, the object, the field,
the value and what is allowed.

The full schema validation (required fields, enums, patterns, both Kubernetes versions) is the schema gate's
(kubeconform, gates.py); this module is what makes a typo fail `make render` with a message a person can act on.
"""
from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubechat_deploy.app.contract import CONTRACTS

from .schemas import build_schemas, kubernetes_schemas

KUBERNETES_VERSION = "1.37.0"
"""The schemas the render checks against: the newest the gates test (gates.KUBERNETES_VERSIONS)."""

QUANTITY = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
"""A Kubernetes quantity: a signed decimal number, then a binary-SI (Ki..Ei), decimal-SI (n, u, m, k..E) suffix or
a decimal exponent (k8s.io/apimachinery pkg/api/resource/quantity.go, ParseQuantity; suffix.go)."""
QUANTITY_HELP = "a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E (e.g. 256Mi, 1Gi, 500m)"

JSON_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    path: tuple  # keys and list indices, as in the rendered object
    shown: str   # the path for people: spec.template.spec.containers[api].resources
    message: str

    def line(self, where: str | None) -> str:
        return f"{where or '(not set in the overlay)'}: {self.kind}/{self.name}: {self.shown}: {self.message}"


# --- schemas ------------------------------------------------------------------------------------------

class Schemas:
    """Kubernetes' strict schemas (kubernetes-validate) and the pinned CRDs' (schemas.py), with $ref resolution."""

    def __init__(self, version: str = KUBERNETES_VERSION) -> None:
        self.k8s = kubernetes_schemas(version) / f"v{version}-local-strict"
        self.crds = build_schemas()

    @functools.cached_property
    def definitions(self) -> dict:
        return json.loads((self.k8s / "_definitions.json").read_text())["$defs"]

    @functools.lru_cache(maxsize=None)
    def for_object(self, api_version: str, kind: str) -> dict | None:
        group, _, version = api_version.rpartition("/")
        crd = self.crds / group / f"{kind.lower()}_{version}.json"
        # A pinned CRD's group first: some end in .k8s.io too (gateway.networking.k8s.io).
        if group and "." in group and (crd.exists() or not group.endswith(".k8s.io")):
            path = crd
        else:
            suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
            path = self.k8s / f"{kind.lower()}{suffix}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def resolve(self, schema: dict) -> tuple[dict, str]:
        """The schema behind a $ref (and the definition's name, '' when none)."""
        name = ""
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = {**self.definitions[name], **{k: v for k, v in schema.items() if k not in ("$ref", "description")}}
        return schema, name


def _shown(path: list, items: list) -> str:
    out = ""
    for key, item in zip(path, items):
        if isinstance(key, int):
            out += f"[{item['name']}]" if isinstance(item, dict) and isinstance(item.get("name"), str) else f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


def schema_problems(doc: dict, schemas: Schemas) -> list[Problem]:
    kind, name = doc.get("kind", "?"), (doc.get("metadata") or {}).get("name", "?")
    schema = schemas.for_object(str(doc.get("apiVersion", "")), str(kind))
    if schema is None:
        return [Problem(kind, name, (), "apiVersion", f"no schema for {doc.get('apiVersion')} {kind} "
                        f"(Kubernetes {KUBERNETES_VERSION} or a CRD pinned in crds.yaml)")]
    problems: list[Problem] = []

    def walk(value, schema: dict, path: list, items: list) -> None:
        schema, definition = schemas.resolve(schema)
        here = lambda message: problems.append(Problem(kind, name, tuple(path), _shown(path, items), message))  # noqa: E731
        if definition == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)) and \
                    not (isinstance(value, str) and QUANTITY.fullmatch(value)):
                here(f"{value!r} is not a Kubernetes quantity: allowed is {QUANTITY_HELP}")
            return
        if value is None:
            return
        pattern = schema.get("pattern")
        if pattern and isinstance(value, str):
            try:
                matched = re.search(pattern, value) is not None
            except re.error:  # a pattern in a syntax Python's re does not read: the schema gate checks it
                matched = True
            if not matched:
                # the CRDs' quantity fields carry the quantity grammar as their pattern
                quantity = all(re.search(pattern, v) for v in ("256Mi", "500m", "1")) and not re.search(pattern, "256MB")
                here(f"{value!r} " + (f"is not a Kubernetes quantity: allowed is {QUANTITY_HELP}" if quantity
                                      else f"does not match the schema's pattern {pattern}"))
                return
        types = schema.get("type")
        types = [types] if isinstance(types, str) else [t for t in (types or []) if t != "null"]
        if types and not any(isinstance(value, JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                             for t in types if t in JSON_TYPES):
            here(f"{value!r} is a {type(value).__name__}; allowed: {' or '.join(types)}")
            return
        if isinstance(value, dict):
            properties = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key, child in value.items():
                if properties and key in properties:
                    walk(child, properties[key], path + [key], items + [value])
                elif isinstance(extra, dict):
                    walk(child, extra, path + [key], items + [value])
                elif properties and extra is False:
                    allowed = sorted(properties)
                    close = difflib.get_close_matches(key, allowed, n=1)
                    problems.append(Problem(kind, name, tuple(path + [key]), _shown(path + [key], items + [value]),
                                            f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                            + f"; allowed here: {', '.join(allowed)}"))
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, child in enumerate(value):
                walk(child, schema["items"], path + [index], items + [child])

    walk(doc, schema, [], [])
    return problems


# --- the settings contract --------------------------------------------------------------------------

def settings_problems(doc: dict, env: str) -> list[Problem]:
    if doc.get("kind") != "ConfigMap":
        return []
    name = doc["metadata"]["name"]
    generator = next((g for g in CONTRACTS if re.fullmatch(re.escape(g) + r"(-[a-z0-9]{10})?", name)), None)
    if generator is None:
        return []
    settings = {s.name: s for s in CONTRACTS[generator]}
    data = doc.get("data") or {}
    problems = []
    for key, value in data.items():
        setting = settings.get(key)
        if setting is None:
            close = difflib.get_close_matches(key, list(settings), n=1, cutoff=0.6)
            problems.append(Problem("ConfigMap", generator, ("data", key), f"data.{key}",
                                    f"unknown setting {key}={value}" + (f" (did you mean {close[0]}?)" if close else "")
                                    + f"; the {generator} settings are: {', '.join(settings)}"))
            continue
        problem = setting.problem(value)
        if problem is None and key == "KUBECHAT_ENVIRONMENT" and value != env:
            problem = f"this is overlays/{env}: allowed: {env}"
        if problem:
            problems.append(Problem("ConfigMap", generator, ("data", key), f"data.{key}", f"{key}={value!r}: {problem}"))
    for setting in settings.values():
        if setting.required and setting.name not in data:
            problems.append(Problem("ConfigMap", generator, ("data",), "data",
                                    f"required setting {setting.name} is missing ({setting.what()}: {setting.description})"))
    return problems


# --- where an overlay set a value -------------------------------------------------------------------

def _overlay_sources(overlay: Path) -> list[tuple[Path, dict]]:
    """The overlay's patches and resources and those of the local components it uses: (file, kustomization entry)."""
    found = []
    folders = [overlay]
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text()) or {}
    for component in kustomization.get("components") or []:
        folder = (overlay / component).resolve()
        if folder.is_dir() and (folder / "kustomization.yaml").exists() and "dist" not in folder.parts[-3:]:
            folders.append(folder)
    for folder in folders:
        spec = yaml.safe_load((folder / "kustomization.yaml").read_text()) or {}
        for entry in spec.get("patches") or []:
            if isinstance(entry, dict) and entry.get("path"):
                found.append((folder / entry["path"], entry.get("target") or {}))
        for resource in spec.get("resources") or []:
            if (folder / resource).is_file():
                found.append((folder / resource, {}))
    return found


def _node_get(node, key):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return k, v
    return None, None


def _find(node, path: tuple, rendered: dict):
    """The YAML key node in `node` at `path` (walking the rendered object alongside for list items' names)."""
    key_node = None
    current = rendered
    for segment in path:
        if isinstance(segment, int):
            if not isinstance(node, yaml.SequenceNode):
                return None
            item = current[segment] if isinstance(current, list) and segment < len(current) else None
            wanted = item.get("name") if isinstance(item, dict) else None
            candidates = [n for n in node.value if wanted is not None and _node_get(n, "name")[1] is not None
                          and _node_get(n, "name")[1].value == wanted] or \
                ([node.value[segment]] if segment < len(node.value) else [])
            if not candidates:
                return None
            node, current = candidates[0], item
        else:
            key_node, node = _node_get(node, segment)
            if node is None:
                return None
            current = current.get(segment) if isinstance(current, dict) else None
    return key_node or node


def _pointer(pointer: str, rendered: dict) -> tuple:
    """A JSON patch path as the rendered object's keys and indices: ~1 is '/', ~0 is '~', and '-' (append) is
    the list's last item after the patch."""
    out, node = [], rendered
    for raw in pointer.strip("/").split("/"):
        segment = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            index = len(node) - 1 if segment == "-" else int(segment) if segment.isdigit() else None
            if index is None:
                return tuple(out + [segment])
            out.append(index)
            node = node[index] if 0 <= index < len(node) else None
        else:
            out.append(segment)
            node = node.get(segment) if isinstance(node, dict) else None
    return tuple(out)


def locate(problem: Problem, overlay: Path, rendered: dict, root: Path) -> str | None:
    """overlays/<env>/<file>:<line> where the overlay sets the problem's field, or None."""
    if problem.kind == "ConfigMap" and problem.path[:1] == ("data",):
        return _locate_setting(problem, overlay, root)
    found: list[tuple[bool, str]] = []
    for path, target in _overlay_sources(overlay):
        if not path.exists():
            continue
        for doc in yaml.compose_all(path.read_text()):
            if isinstance(doc, yaml.SequenceNode):  # a JSON patch: its ops' paths
                if target.get("kind", problem.kind) != problem.kind or target.get("name", problem.name) != problem.name:
                    continue
                for op in doc.value:
                    op_path = _node_get(op, "path")[1]
                    if op_path is None:
                        continue
                    segments = _pointer(op_path.value, rendered)
                    if problem.path[:len(segments)] == segments:
                        rest = problem.path[len(segments):]
                        value = _node_get(op, "value")[1]
                        sub = rendered
                        for s in segments:
                            sub = sub[s] if isinstance(sub, (dict, list)) else None
                        hit = _find(value, rest, sub) if rest else (value or op_path)
                        if hit is not None:
                            found.append((True, f"{path.relative_to(root)}:{hit.start_mark.line + 1}"))
                continue
            if not isinstance(doc, yaml.MappingNode):
                continue
            kind = _node_get(doc, "kind")[1]
            meta_name = _node_get(_node_get(doc, "metadata")[1], "name")[1]
            doc_kind = kind.value if kind is not None else target.get("kind")
            doc_name = meta_name.value if meta_name is not None else target.get("name")
            if doc_kind != problem.kind or (doc_name is not None and doc_name != problem.name
                                            and not problem.name.endswith(f"-{doc_name}")
                                            and not problem.name.startswith(f"{doc_name}-")):
                continue
            hit = _find(doc, problem.path, rendered)
            if hit is not None:
                # the rendered name may carry the environment's prefix or a hash suffix; an exact name wins
                found.append((doc_name in (None, problem.name), f"{path.relative_to(root)}:{hit.start_mark.line + 1}"))
    exact = [where for is_exact, where in found if is_exact]
    return (exact or [where for _, where in found] or [None])[0]


def _locate_setting(problem: Problem, overlay: Path, root: Path) -> str | None:
    key = problem.path[1] if len(problem.path) > 1 else None
    text = (overlay / "kustomization.yaml").read_text()
    spec = yaml.safe_load(text) or {}
    for generator in spec.get("configMapGenerator") or []:
        if generator.get("name") != problem.name:
            continue
        for env_file in generator.get("envs") or []:
            lines = (overlay / env_file).read_text().splitlines()
            for number, line in enumerate(lines, 1):
                if key is not None and line.split("=", 1)[0].strip() == key:
                    return f"{(overlay / env_file).relative_to(root)}:{number}"
            if key is None:
                return f"{(overlay / env_file).relative_to(root)}"
        for number, line in enumerate(text.splitlines(), 1):
            if (key is None and f"name: {problem.name}" in line) or (key is not None and f"{key}=" in line):
                return f"{(overlay / 'kustomization.yaml').relative_to(root)}:{number}"
    return None


# --- the checks make render runs ----------------------------------------------------------------------

def yaml_problems(overlays: Path, root: Path) -> list[str]:
    """Every overlay and component YAML file parses; an error names the file, line and column."""
    problems = []
    for path in sorted(overlays.rglob("*.yaml")):
        try:
            list(yaml.safe_load_all(path.read_text()))
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f"{path.relative_to(root)}:{mark.line + 1}:{mark.column + 1}" if mark else str(path.relative_to(root))
            problems.append(f"{where}: not valid YAML: {error.problem or error.context}")
    return problems


def check(docs: list[dict], env: str, overlay: Path, root: Path, schemas: Schemas | None = None) -> list[str]:
    """Every problem of the environment's rendered objects, each located in the overlay where possible."""
    schemas = schemas or Schemas()
    out = []
    for doc in docs:
        for problem in schema_problems(doc, schemas) + settings_problems(doc, env):
            out.append(f"environment {env!r}: " + problem.line(locate(problem, overlay, doc, root)))
    return out
