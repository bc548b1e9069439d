"""Render everything (`make render` is this script): cdk8s synth into dist/base/, then kustomize build of
every overlay into dist/rendered/<env>/, one file per resource, then the docs pages generated from it
(runbooks, configuration reference; only when writing the project's own dist/). Renders into a temporary
folder and replaces dist/ only when every step succeeded, so a failed render leaves the committed dist/
untouched.

Usage: python scripts/render.py [--dist DIR] [--app COMMAND] [--overlays DIR] [--no-cache]
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


from kubechat_deploy.layout import (BASE_CHART, COMPONENT_PREFIX, ENVIRONMENT_PREFIX, PARTS,  # noqa: E402
                                    PLATFORM_PREFIX, RENDER_AS_PATCH)
from kubechat_tools.release import check_environment  # noqa: E402
from kubechat_tools.manifests import dump, load_all_text, write_one_per_file  # noqa: E402
from kubechat_tools.paths import BIN, DIST, ENVIRONMENTS, ROOT  # noqa: E402
from kubechat_tools.toolenv import tool_env  # noqa: E402
from kubechat_tools import overlay_values, render_cache  # noqa: E402

# Folders the overlays read besides dist/base (they are copied next to the new base while rendering).
KUSTOMIZE_INPUTS = ("overlays",)
CDK8S = ROOT / "node_modules" / ".bin" / "cdk8s"
RECORDER = Path(render_cache.__file__).relative_to(ROOT)
GENERATED_PAGES = ("runbooks.py", "config_reference.py")
"""Written from the new dist/ after it: docs/runbooks/, docs/configuration.md and docs/app-contract.md's table."""


def fail(message: str) -> "NoReturn":  # type: ignore[name-defined]
    print(f"render: FAILED: {message}", file=sys.stderr)
    print("render: dist/ was left untouched.", file=sys.stderr)
    raise SystemExit(1)


def synth(work: Path, app: str | None, warm: "WarmSynth | None" = None) -> dict[str, list[dict]]:  # noqa: F821
    """Run cdk8s synth; return chart id -> resources. Without --app, the environments and the platform
    are synthesized by two `cdk8s synth` processes in parallel (main.py's parts), each only when the
    content-addressed cache (kubechat_tools/render_cache.py) holds no synth of exactly its inputs.
    With `warm` (make watch's process, kubechat_tools/watch.py), a part the cache misses is synthesized in
    that process, whose libraries are already loaded; it is not stored in the cache, whose input records
    come only from fresh `cdk8s synth` processes (a warm process has imported much already and would record less)."""
    jobs = {"app": app} if app else {part: f"python main.py {part}" for part in PARTS}
    outs: dict[str, Path] = {}
    todo = []  # (part, command, output folder, inputs record, cache key base)
    for part, command in jobs.items():
        cached, base = (None, "") if app else render_cache.lookup(ROOT, part, command)
        if cached is not None:
            print(f"render: {part}: unchanged inputs, synth taken from the cache", flush=True)
            outs[part] = cached
            continue
        outs[part], inputs = work / f"synth-{part}", work / f"inputs-{part}.json"
        if warm is not None:
            warm.synth(part, outs[part])
            print(f"render: {part}: synthesized (warm process)", flush=True)
            continue
        if not app:  # record what the part's synth reads, for its cache key
            command = f"python {RECORDER} {inputs} main.py {part}"
        todo.append((part, command, outs[part], inputs, base))
    with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
        results = list(pool.map(lambda job: subprocess.run(
            [str(CDK8S), "synth", "--no-check-upgrade", "--output", str(job[2]), "--app", job[1]],
            cwd=ROOT, env=synth_env(), capture_output=True, text=True), todo))
    for result in results:
        check_synth(result)
    for part, _, out, inputs, base in todo:
        if not app:
            render_cache.store(ROOT, part, base, out, inputs)
        print(f"render: {part}: synthesized", flush=True)
    charts = {path.name.removesuffix(".k8s.yaml"): load_all_text(path.read_text())
              for part in jobs for path in sorted(outs[part].glob("*.yaml"))}
    return check_charts(charts)


def synth_env() -> dict[str, str]:
    """The synth's environment: this checkout's constructs and tools first on the import path, so a copy of the
    project that shares the venv (a clone, make diff's worktree) renders its own code, not the editable
    install's."""
    env = tool_env()
    own = f"{ROOT / 'constructs'}:{ROOT / 'scripts'}"
    env["PYTHONPATH"] = f"{own}:{env['PYTHONPATH']}" if env.get("PYTHONPATH") else own
    return env


def check_synth(result: subprocess.CompletedProcess) -> None:
    if result.returncode != 0:
        detail = "\n".join(line for line in (result.stderr + result.stdout).splitlines()
                           if line.strip() and not line.startswith(("b'!!", "!!")))
        errors = [line for line in detail.splitlines() if "Error: " in line and not line.startswith("Error: command")]
        summary = errors[-1].strip() if errors else "see the output below"
        fail(f"cdk8s synth (main.py) failed: {summary}\n{detail}")


def check_charts(charts: dict[str, list[dict]]) -> dict[str, list[dict]]:
    if not charts.get(BASE_CHART):
        fail(f"cdk8s synth produced no chart {BASE_CHART!r} (the base)")
    prefixes = (COMPONENT_PREFIX, PLATFORM_PREFIX, ENVIRONMENT_PREFIX)
    unknown = [c for c in charts if c != BASE_CHART and not c.startswith(prefixes)]
    if unknown:
        fail(f"cdk8s synth produced charts {unknown}; ids must be {BASE_CHART!r} or start with "
             f"{', '.join(map(repr, prefixes))}")
    return charts


(RENDER_AS, _), = RENDER_AS_PATCH.items()


def split_patches(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """A component's objects annotated render-as: patch modify the base instead of adding to it."""
    resources, patches = [], []
    for doc in docs:
        annotations = doc.get("metadata", {}).get("annotations") or {}
        if annotations.get(RENDER_AS) == "patch":
            annotations.pop(RENDER_AS)
            if not annotations:
                doc["metadata"].pop("annotations")
            patches.append(doc)
        else:
            resources.append(doc)
    return resources, patches


def write_kustomization(folder: Path, files: list[str], patches: list[str], *, component: bool) -> None:
    kind = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n" if component else \
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    what = ("a component overlays opt into" if component else
            "a cluster-wide platform piece, applied once per cluster" if folder.parent.name == "platform" else
            "the environment-neutral base the overlays build on")
    text = (f"# Generated by `make render` from main.py: {what}.\n" + kind + "resources:\n"
            + "".join(f"  - {name}\n" for name in files))
    if patches:
        text += "patches:\n" + "".join(f"  - path: {name}\n" for name in patches)
    (folder / "kustomization.yaml").write_text(text)


def write_transformers(folder: Path, docs: list[dict]) -> None:
    """An environment's transformer configurations, in one file in their order (Kustomize applies them
    in order), with the kustomization an overlay's `transformers:` entry loads."""
    folder.mkdir(parents=True)
    (folder / "transformers.yaml").write_text("---\n".join(dump(doc) for doc in docs))
    (folder / "kustomization.yaml").write_text(
        "# Generated by `make render` from constructs/kubechat_deploy/environment.py: what makes the base this\n"
        "# environment, applied in this order after everything else (overlays/<env>/kustomization.yaml\n"
        "# lists this folder under transformers:).\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - transformers.yaml\n")


def build_overlay(work: Path, env: str, exit_on_error: bool = True) -> list[dict] | str:
    """The environment's resources, or (exit_on_error=False) the error message as a string."""
    overlay = work / "overlays" / env
    error = None
    if not (overlay / "kustomization.yaml").is_file():
        error = f"environment {env!r}: overlays/{env}/kustomization.yaml does not exist"
    else:
        result = subprocess.run([str(BIN / "kustomize"), "build", str(overlay)], capture_output=True, text=True)
        if result.returncode == 0:
            return load_all_text(result.stdout)
        detail = result.stderr.strip().replace(str(work) + "/", "")
        error = f"environment {env!r}: kustomize build overlays/{env} failed:\n{detail}"
    if exit_on_error:
        fail(error)
    return error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST, help="output folder (default: dist/)")
    parser.add_argument("--app", help="cdk8s app command (default: main.py's environments and platform parts)")
    parser.add_argument("--overlays", type=Path, default=ROOT / "overlays", help="overlays folder")
    parser.add_argument("--no-cache", action="store_true",
                        help="synthesize every part, ignoring the cache (KUBECHAT_RENDER_CACHE=off does the same)")
    args = parser.parse_args()
    if args.no_cache:
        os.environ["KUBECHAT_RENDER_CACHE"] = "off"
    render(args.dist, app=args.app, overlays=args.overlays)
    return 0


def render(dist: Path, *, app: str | None = None, overlays: Path = ROOT / "overlays", warm=None,
           schemas: overlay_values.Schemas | None = None) -> None:
    """The whole render into `dist` (see the module's docstring); raises SystemExit on a failure, with dist
    untouched. make watch passes its warm synth process and keeps the loaded schemas across renders."""
    dist = dist.resolve()
    dist.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=dist.parent) as tmp:
        work = Path(tmp)
        print("render: cdk8s synth", flush=True)
        charts = synth(work, app, warm)
        new_dist = work / "dist"
        for chart, docs in charts.items():
            if chart.startswith(ENVIRONMENT_PREFIX):
                relative = f"environments/{chart.removeprefix(ENVIRONMENT_PREFIX)}"
                write_transformers(new_dist / relative, docs)
                print(f"render: dist/{relative}: {len(docs)} transformers", flush=True)
                continue
            component = chart.startswith(COMPONENT_PREFIX)
            if chart.startswith(PLATFORM_PREFIX):
                relative = f"platform/{chart.removeprefix(PLATFORM_PREFIX)}"
            else:
                relative = f"components/{chart.removeprefix(COMPONENT_PREFIX)}" if component else "base"
            docs, patches = split_patches(docs) if component else (docs, [])
            files = write_one_per_file(docs, new_dist / relative, f"cdk8s chart {chart!r}")
            patch_files = write_one_per_file(patches, new_dist / relative, f"cdk8s chart {chart!r}", prefix="patch-")
            write_kustomization(new_dist / relative, files, patch_files, component=component)
            print(f"render: dist/{relative}: {len(files)} resources", flush=True)

        for name in KUSTOMIZE_INPUTS:
            source = overlays if name == "overlays" else ROOT / name
            shutil.copytree(source, work / name, symlinks=True)
        problems = overlay_values.yaml_problems(work / "overlays", work)
        if problems:
            fail("\n".join(problems))
        # The environments build independently: in parallel (kustomize is a separate process each).
        with ThreadPoolExecutor(max_workers=len(ENVIRONMENTS)) as pool:
            built = dict(zip(ENVIRONMENTS, pool.map(lambda env: build_overlay(work, env, exit_on_error=False),
                                                     ENVIRONMENTS)))
        schemas = schemas or overlay_values.Schemas()
        for env in ENVIRONMENTS:
            docs = built[env]
            if isinstance(docs, str):
                fail(docs)
            # The overlay's values first (schemas, the settings contract), each named with its file and line.
            problems = overlay_values.check(docs, env, work / "overlays" / env, work, schemas) or check_environment(docs, env)
            if problems:
                fail("\n".join(problems))
            rendered = write_one_per_file(docs, new_dist / "rendered" / env, f"environment {env!r}")
            print(f"render: dist/rendered/{env}: {len(rendered)} resources", flush=True)

        old = work / "old-dist"
        if dist.exists():
            os.replace(dist, old)
        os.replace(new_dist, dist)
    print(f"render: wrote {dist.relative_to(ROOT) if dist.is_relative_to(ROOT) else dist}/")
    if dist == DIST.resolve():  # the pages generated from the project's dist/: the rest of what make render writes
        for script in GENERATED_PAGES:
            result = subprocess.run([sys.executable, str(ROOT / "scripts" / script)], cwd=ROOT)
            if result.returncode != 0:
                raise SystemExit(f"render: scripts/{script} failed (dist/ is written; the docs pages are not)")


if __name__ == "__main__":
    sys.exit(main())
