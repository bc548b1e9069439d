//go:build tools

// Package tools pins the Prometheus Operator the metrics tier runs (tests/metrics): the version the
// platform pins (kubechat_deploy.versions, kube-prometheus-stack 88.3.0 ships v0.93.0).
package tools

import _ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
