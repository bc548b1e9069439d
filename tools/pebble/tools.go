//go:build tools

// Package tools pins Let's Encrypt's test ACME server Pebble and its DNS server pebble-challtestsrv, run
// on loopback by the admission tier (tests/testbed/cert_manager.py): Pebble resolves the rendered hosts
// through pebble-challtestsrv to loopback and validates HTTP-01 through the tier's Traefik. A module of its
// own, so that cert-manager (tools/cert-manager) is built with exactly its release's dependency versions.
package tools

import (
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble"
	_ "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"
)
