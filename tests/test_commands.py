"""Every command README.md and docs/ tell a user to type names something that exists: a make target of the
Makefile, a script of scripts/ (executable, in the project's Python environment whichever Python starts it), an
npm script of package.json, or a tool the reader brings (kubectl, argocd, ...). The project's own scripts are
then run as a user runs them: from a fresh shell with only the system's PATH, in the repository's root
(issue #25.4: `python scripts/release.py --help` failed with "No module named 'kubechat_deploy'")."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

EXTERNAL = {
    # Tools the reader brings (docs/install.md lists them) and shell built-ins the commands use.
    "kubectl", "argocd", "git", "helm", "cosign", "crane", "psql", "pg_dump", "curl", "openssl", "trivy", "nerdctl",
    "docker", "kustomize", "go", "bash", "sh", "export", "cd", "for", "echo", "cat", "grep", "jq", "watch",
    "aws", "mc", "cdk8s", "npx", "pip", "apt-get", "sudo", "base64", "xargs", "sed", "head", "tail", "sleep",
    "while", "if", "do", "done", "test", "time", "env", "ls", "rm", "mkdir", "ssh", "dig", "nslookup",
    "barman-cloud-backup-list", "barman-cloud-wal-archive", "redis-cli", "valkey-cli", "mkdocs", "promtool",
    "kube-score", "checkov", "kubeconform", "dyff", "actionlint", "migrate", "kubectl-kyverno",
}
COMMAND_WORDS = {"make", "python", "python3", "npm", "scripts", ".venv/bin/python"} | EXTERNAL
SPAN = re.compile(r"`([^`\n]+)`")
SHELL_FENCES = ("", "bash", "sh", "shell", "console")


def split_page(text: str) -> tuple[list[str], str]:
    """The lines of the page's shell code blocks (continuations joined), and its prose without any code block."""
    commands, prose, fence, pending = [], [], None, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = line.strip()[3:].strip() if fence is None else None
            continue
        if fence is None:
            prose.append(line)
        elif fence in SHELL_FENCES:
            line = pending + line.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            line = line.removeprefix("$ ")
            if line and not line.startswith("#"):
                commands.append(line)
    return commands, "\n".join(prose)


def documented_commands() -> list[tuple[str, str]]:
    """(page, command) for every shell code-block line and every inline span that starts with a command word."""
    found = []
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        commands, prose = split_page(page.read_text())
        found += [(name, command) for command in commands]
        for span in SPAN.findall(prose):
            words = span.split()
            first = words[0] if words else ""
            if len(words) > 1 and (first in COMMAND_WORDS or first.startswith(("scripts/", "./scripts/", ".venv/"))):
                found.append((name, span))
    return found


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def problem(command: str) -> str | None:
    """Why `command` names nothing that exists, or None."""
    try:
        words = shlex.split(command.replace("|", " | "), comments=True)
    except ValueError:
        words = command.split()
    if not words:
        return None
    first, rest = words[0], words[1:]
    if first == "make":
        targets = [w for w in rest if not w.startswith("-") and "=" not in w and re.fullmatch(r"[a-z][a-z-]*", w)]
        missing = [t for t in targets if t not in makefile_targets()]
        return f"no make target {', '.join(missing)}" if missing else None
    if first in ("python", "python3", ".venv/bin/python"):
        script = next((w for w in rest if not w.startswith("-")), None)
        if script and script.endswith(".py") and "<" not in script and not (ROOT / script).is_file():
            return f"no file {script}"
        return None
    if first.startswith(("scripts/", "./scripts/")) and "<" not in first:
        path = ROOT / first.removeprefix("./")
        if not path.is_file():
            return f"no file {first}"
        return None if path.stat().st_mode & 0o111 else f"{first} is not executable"
    if first == "npm":
        if rest[:1] == ["run"]:
            name = next((w for w in rest[1:] if not w.startswith("-")), "")
            scripts = json.loads((ROOT / "package.json").read_text()).get("scripts", {})
            return None if name in scripts else f"no npm script {name!r} in package.json"
        return None
    if first in EXTERNAL or "=" in first or first.startswith("scripts/"):
        return None
    return f"{first!r} is neither a project command nor a known tool"


def test_every_documented_command_names_something_that_exists():
    commands = documented_commands()
    assert len(commands) > 100, f"only {len(commands)} commands found: the extraction broke"
    broken = [f"{page}: {command}  ->  {why}" for page, command in commands if (why := problem(command))]
    assert not broken, "documented commands that do not work as written:\n" + "\n".join(broken)


def test_the_check_finds_what_does_not_exist():
    assert problem("make rendr") == "no make target rendr"
    assert problem("python scripts/no_such.py --help") == "no file scripts/no_such.py"
    assert problem("npm run synthesize") == "no npm script 'synthesize' in package.json"
    assert problem("kubechatctl restore") == "'kubechatctl' is neither a project command nor a known tool"
    assert problem("make render") is None and problem("scripts/release.py upgrade --env staging") is None


def documented_scripts() -> list[str]:
    found = set()
    for _, command in documented_commands():
        for word in command.split():
            if re.fullmatch(r"(\./)?scripts/[a-z_]+\.py", word):
                found.add(word.removeprefix("./"))
    return sorted(found)


@pytest.mark.parametrize("style", ["python3", "direct"])
def test_documented_scripts_run_as_written_from_a_fresh_shell(style):
    """From a fresh login shell with only the system's PATH (no venv activated), in the repository's root."""
    scripts = documented_scripts()
    assert "scripts/release.py" in scripts and "scripts/render.py" in scripts, scripts
    for script in scripts:
        command = f"python3 {script} --help" if style == "python3" else f"{script} --help"
        result = subprocess.run(["env", "-i", f"HOME={Path.home()}", "PATH=/usr/local/bin:/usr/bin:/bin", "bash", "-lc",
                                 command], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage" in result.stdout.lower(), \
            f"`{command}` failed ({result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
