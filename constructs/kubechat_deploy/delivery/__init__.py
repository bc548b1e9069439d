"""How changes arrive: Argo CD's sync waves and hooks, progressive delivery with Argo Rollouts, and the Argo CD objects (AppProject, ApplicationSet) that deliver the environments."""
