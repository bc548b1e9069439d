//go:build tools

// Package tools pins Helm at the version Argo CD v3.5.1 bundles (its hack/tool-versions.sh helm4_version), for
// the delivery tier's repo-server, which renders the platform's charts with it (tests/testbed/helm.py).
package tools

import _ "helm.sh/helm/v4/cmd/helm"
