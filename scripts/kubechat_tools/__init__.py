"""Build tooling for kubechat-deploy: CRD sources, rendering, validation gates."""
