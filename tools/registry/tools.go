//go:build tools

// Package tools pins the OCI registry (CNCF distribution) the admission tier pushes signed images to,
// on a loopback address (scripts/kubechat_tools/supply_chain.py).
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
