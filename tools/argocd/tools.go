//go:build tools

// Package tools pins Argo CD's multi-call binary (cmd), built by tests/testbed/argocd.py.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
