"""How cdk8s charts map to dist/ (shared by main.py's charts and scripts/render.py, without cdk8s)."""

BASE_CHART = "kubechat"
"""The chart rendered to dist/base/: the environment-neutral base every overlay builds on."""
PLATFORM_PREFIX = "platform-"
"""Charts whose id starts with this are rendered to dist/platform/<rest of the id>/: cluster-wide
platform pieces applied once per cluster, not per environment."""
COMPONENT_PREFIX = "component-"
"""Charts whose id starts with this are rendered to dist/components/<rest of the id>/ as Kustomize components."""
ENVIRONMENT_PREFIX = "environment-"
"""Charts whose id starts with this are rendered to dist/environments/<environment>/: the transformers
that make the base an environment (environment.py), listed by overlays/<environment>/kustomization.yaml."""
ENVIRONMENTS = ("dev", "staging", "production")
"""The environments, each an overlay overlays/<environment>/."""
PARTS = ("environments", "platform")
"""main.py's parts, each synthesized by its own `cdk8s synth` process (in parallel: the platform part alone
loads the large Argo CD type library), each cached by what it read (scripts/kubechat_tools/render_cache.py)."""
RENDER_AS_PATCH = {"kubechat.io/render-as": "patch"}
"""A component's object carrying this annotation is written as a patch of the base, not a resource."""
