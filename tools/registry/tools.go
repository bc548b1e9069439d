//go:build tools

// Package tools pins the OCI registry (CNCF distribution) the admission tier pushes signed images to,
// on a loopback address (tests/testbed/registry.py).
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
