//go:build tools

// Package tools pins the kwok controller built by scripts/controlplane.py.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
