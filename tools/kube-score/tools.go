//go:build tools

// Package tools pins kube-score, the lint gate's second peer linter (scripts/kubechat_tools/gates.py).
package tools

import _ "github.com/zegl/kube-score/cmd/kube-score"
