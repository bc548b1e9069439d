//go:build tools

// Package tools pins Alertmanager at the version kube-prometheus-stack 88.3.0 runs (its values.yaml:
// alertmanager.alertmanagerSpec.image.tag v0.33.1), built by tests/testbed/prometheus_operator.py for the
// metrics tier: the rendered routing delivers the alerts of a real Prometheus to a webhook on loopback.
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
