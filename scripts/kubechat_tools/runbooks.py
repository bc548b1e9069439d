"""Write docs/runbooks/<alert>.md for every alert of constructs/kubechat_deploy/observability/alerts.py, so each
alert's runbook_url resolves and the runbooks never drift from the rules. `make render` runs it;
tests fail when the committed runbooks are stale.

Usage: python scripts/runbooks.py [--check]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from kubechat_deploy.observability.alerts import ALERTS, Alert  # noqa: E402
from kubechat_tools.paths import ROOT  # noqa: E402

FOLDER = ROOT / "docs" / "runbooks"


def runbook(alert: Alert) -> str:
    logs = (f"\nLogs (Loki, with the logging component; JSON lines):\n\n```logql\n{alert.logs}\n```\n"
            if alert.logs else "")
    return f"""# {alert.name}

Severity: **{alert.severity}**. {alert.summary}

Alert rule (group `{alert.group}`, fires after `{alert.for_}`):

```promql
{alert.expr}
```

## What it means

{alert.means}

## How to confirm

{alert.confirm}
{logs}
## How to fix

{alert.fix}

## How to escalate

{alert.escalate}
"""


def index() -> str:
    rows = "\n".join(f"| [{a.name}]({a.name}.md) | {a.severity} | {a.summary} |" for a in ALERTS)
    return f"# Runbooks\n\nOne page per alert (generated from `constructs/kubechat_deploy/observability/alerts.py`).\n\n" \
           f"| alert | severity | summary |\n|---|---|---|\n{rows}\n"


def expected() -> dict[str, str]:
    pages = {f"{a.name}.md": runbook(a) for a in ALERTS}
    pages["index.md"] = index()
    return pages


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="fail if docs/runbooks/ is stale")
    args = parser.parse_args()
    pages = expected()
    if args.check:
        actual = {p.name: p.read_text() for p in FOLDER.glob("*.md")} if FOLDER.is_dir() else {}
        stale = sorted(n for n in pages.keys() | actual.keys() if pages.get(n) != actual.get(n))
        if stale:
            print("runbooks: stale, run `make render`: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    FOLDER.mkdir(parents=True, exist_ok=True)
    for old in FOLDER.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (FOLDER / name).write_text(text)
    print(f"runbooks: wrote {len(pages)} pages to docs/runbooks/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
