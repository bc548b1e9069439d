"""What tells an operator how KubeChat is doing: ServiceMonitors, every alert with its runbook, the dashboards and the catalog of the metrics they use."""
