//go:build tools

// Package tools pins the Kyverno CLI built by scripts/kubechat_tools/kyverno_cli.py.
package tools

import _ "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
