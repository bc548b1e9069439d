//go:build tools

// Package tools pins Kyverno v1.19.0 and the supply-chain tools built with its dependency graph:
//   - the Kyverno CLI (kubectl-kyverno), for tests/test_kyverno.py (tests/testbed/controlplane.py);
//   - Kyverno's admission controller and reports controller, for the admission tier (tests/admission);
//   - cosign (the version Kyverno v1.19.0 verifies with) and go-containerregistry's crane (the version
//     Kyverno v1.19.0 pulls with), which sign and push the images the admission tier verifies.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
	_ "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
	_ "github.com/kyverno/kyverno/cmd/kyverno"
	_ "github.com/kyverno/kyverno/cmd/reports-controller"
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
