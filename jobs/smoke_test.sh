#!/bin/sh
# Post-sync smoke test (Argo CD PostSync hook): the API is ready (which means it reaches PostgreSQL
# and the cache), the web front end serves, and, where the environment is public, the public URL
# answers over HTTPS with a certificate curl trusts. Exits non-zero at the first failure, saying
# which check failed; Argo CD then marks the sync failed.
# Environment: API_URL, WEB_URL, PUBLIC_URL and PUBLIC_API_URL (the web's and the API's public hosts,
# docs/app-contract.md "Public routing"; empty: no public check), SMOKE_RETRIES (default 10).
set -eu

retries="${SMOKE_RETRIES:-10}"

check() {
  name="$1"
  url="$2"
  if body=$(curl --fail --silent --show-error --max-time 10 --retry "$retries" --retry-delay 3 \
      --retry-all-errors "$url" 2>&1); then
    echo "smoke-test: ok: $name ($url)"
  else
    echo "smoke-test: FAILED: $name ($url): $body" >&2
    exit 1
  fi
}

check "API ready: database and cache reachable" "${API_URL}/health/ready"
check "web front end serving" "${WEB_URL}/api/health"
if [ -n "${PUBLIC_URL:-}" ]; then
  check "web's public host with a valid certificate" "${PUBLIC_URL}/api/health"
fi
if [ -n "${PUBLIC_API_URL:-}" ]; then
  check "API's public host with a valid certificate" "${PUBLIC_API_URL}/health/ready"
fi
echo "smoke-test: passed"
