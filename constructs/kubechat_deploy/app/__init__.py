"""The application: the API and the web front end (over one workload building block), their public exposure, the post-sync smoke test, the settings contract, and dev's inspection tools."""
