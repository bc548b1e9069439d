"""KubeChat's cdk8s constructs: the environment-neutral base that the Kustomize overlays build on."""
