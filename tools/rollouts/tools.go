//go:build tools

// Package tools pins the Argo Rollouts controller, built by tests/testbed/argocd.py.
package tools

import _ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
