//go:build tools

// Package tools pins Let's Encrypt's test ACME server Pebble, run on loopback by the admission tier
// (tests/testbed/cert_manager.py). A module of its own, so that cert-manager (tools/cert-manager)
// is built with exactly its release's dependency versions.
package tools

import _ "github.com/letsencrypt/pebble/v2/cmd/pebble"
