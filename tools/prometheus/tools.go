//go:build tools

// Package tools pins promtool (Prometheus's rule checker and unit-test runner) and the Prometheus
// server (the delivery tier's canary analyses query it) in a module of their own, so Prometheus's large
// dependency tree never moves the versions the other tools build with.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
