"""The test bench (testbed): the real programs the tiers start (a Kubernetes control plane, Argo CD and Argo Rollouts,
the Prometheus Operator and Prometheus, Kyverno, cert-manager and Pebble, a registry) and the stand-ins for
what cannot run here, each built pinned into .cache/, started on loopback, stopped exactly. Used by the tests
only; the product's tools (scripts/kubechat_tools) never import it."""
