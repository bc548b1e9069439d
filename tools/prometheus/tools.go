//go:build tools

// Package tools pins promtool (Prometheus's rule checker and unit-test runner) in a module of its
// own, so Prometheus's large dependency tree never moves the versions the other tools build with.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
