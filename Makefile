# kubechat-deploy: `make render` renders everything, `make test` runs every test.
# Each target installs what it needs into project-local, git-ignored folders, from lock files:
#   .venv/          Python (requirements-render.lock for make render, requirements.lock for the tests)
#   .venv-checkov/  checkov (requirements-checkov.lock)
#   node_modules/   cdk8s-cli (package-lock.json)     bin/   Go tools (tools/**/go.mod; make render builds only kustomize)
# A stamp file per folder records the lock it was built from, so a warm run installs nothing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BASE ?= $(shell command -v /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Offline mirror of the pinned CRDs (see crds.yaml); empty means download from upstream.
CRD_MIRROR ?= $(if $(wildcard ../shared/crds/INDEX.txt),../shared/crds,)
export CRD_MIRROR
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export CDK8S_CHECK_UPGRADE := false
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export GOFLAGS := -mod=mod

CHECKOV_VERSION := 3.3.30
GO_TOOLS := ./cmd/psa-check github.com/yannh/kubeconform/cmd/kubeconform

.PHONY: help setup crds render validate test check integration delivery-test metrics-test admission-test watch bench imports lock clean restore-manifest diff preflight docs dev-deploy dev-open dev-upgrade dev-build dev-rebuild-api dev-rebuild-web dev-status dev-undeploy dev-db-connect dev-db-status dev-db-health dev-db-integrity

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# make render needs only the render subset (requirements-render.lock); the tests the whole tree.
$(VENV)/.render-stamp: requirements-render.lock pyproject.toml
	@echo "setup: Python venv for rendering ($(PYTHON_BASE))"
	@test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV) || { apt-get install -y -qq python3-venv && $(PYTHON_BASE) -m venv $(VENV); }
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-render.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.stamp: requirements.lock $(VENV)/.render-stamp
	@echo "setup: Python packages for the tests"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

.venv-checkov/.stamp: requirements-checkov.lock
	@echo "setup: checkov venv"
	@test -x .venv-checkov/bin/python || $(PYTHON_BASE) -m venv .venv-checkov || { apt-get install -y -qq python3-venv && $(PYTHON_BASE) -m venv .venv-checkov; }
	@.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.lock
	@touch $@

node_modules/.stamp: package-lock.json
	@echo "setup: npm ci (cdk8s-cli)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# make render needs only kustomize; the gates and tests the other Go tools (built once, into bin/).
bin/kustomize: tools/go.mod tools/go.sum
	@echo "setup: kustomize into bin/"
	@mkdir -p bin
	@cd tools && go build -o ../bin/ sigs.k8s.io/kustomize/kustomize/v5
	@touch $@

bin/.stamp: bin/kustomize tools/go.mod tools/go.sum $(wildcard tools/cmd/*/*.go) tools/prometheus/go.mod \
            tools/prometheus/go.sum tools/prometheus/build-tags tools/review/go.mod tools/review/go.sum tools/kube-score/go.mod tools/kube-score/go.sum
	@echo "setup: Go tools into bin/"
	@mkdir -p bin
	@cd tools && go build -o ../bin/ $(GO_TOOLS)
	@cd tools && go build -tags postgres -o ../bin/ github.com/golang-migrate/migrate/v4/cmd/migrate
	@cd tools/prometheus && go build -tags "$$(grep -v '^#' build-tags | paste -sd, -)" -o ../../bin/ github.com/prometheus/prometheus/cmd/promtool
	@cd tools/review && go build -o ../../bin/ github.com/homeport/dyff/cmd/dyff github.com/rhysd/actionlint/cmd/actionlint
	@cd tools/kube-score && go build -o ../../bin/ github.com/zegl/kube-score/cmd/kube-score
	@touch $@

# Debian packages the tests run for real: PostgreSQL (migrations, backups, PITR), curl and openssl
# (the smoke-test script and its TLS check), redis-server (Argo CD's cache in the delivery tier, the API's
# cache with its rendered arguments), libnss-wrapper (a container image's users for the backup jobs' test),
# iproute2 (the admission tier's pod network: tests/testbed/netns.py), chromium (tests/test_web_csp.py).
# Installed only when missing.
.cache/postgresql.stamp: Makefile
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || missing="$$missing libnss-wrapper"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p .cache && touch $@

# The Next.js page tests/test_web_csp.py loads in Chromium (tests/fixtures/web-app: its package-lock.json pins
# Next.js and React), installed and built once.
WEB_APP := tests/fixtures/web-app
.cache/web-app.stamp: $(WEB_APP)/package-lock.json $(WEB_APP)/next.config.mjs $(WEB_APP)/proxy.js $(wildcard $(WEB_APP)/app/*)
	@echo "setup: the web front end's test page (npm ci, next build in $(WEB_APP))"
	@cd $(WEB_APP) && npm ci --no-audit --no-fund --loglevel=error && NEXT_TELEMETRY_DISABLED=1 node_modules/.bin/next build >/dev/null
	@mkdir -p .cache && touch $@

# The CRDs pinned in crds.yaml, fetched once (CRD_MIRROR offline) and verified against their sha256. The
# first prerequisite of render, check, test and setup: offline without a mirror they fail here, after the
# render venv (about a minute), not after the long installs, saying how to bring a mirror.
.cache/crds.stamp: crds.yaml $(VENV)/.render-stamp
	@$(PY) scripts/fetch_crds.py
	@touch $@

crds: .cache/crds.stamp ## fetch and verify the pinned CRDs (sha256) into .cache/crds/

setup: .cache/crds.stamp $(VENV)/.stamp node_modules/.stamp bin/.stamp .venv-checkov/.stamp .cache/postgresql.stamp .cache/web-app.stamp ## install every pinned tool (idempotent)

render: .cache/crds.stamp node_modules/.stamp bin/kustomize ## cdk8s synth + kustomize build of every overlay into dist/
	@$(PY) scripts/render.py
	@# Run as the app of `cdk8s synth` (cdk8s.yaml): its scratch output folder gets one file per environment.
	@if [ -n "$${CDK8S_OUTDIR:-}" ]; then mkdir -p "$$CDK8S_OUTDIR" && for env in dev staging production; do \
	  for f in dist/rendered/$$env/*.yaml; do [ "$${f##*/}" = kustomization.yaml ] || { echo "---"; cat "$$f"; }; done \
	  > "$$CDK8S_OUTDIR/$$env.k8s.yaml"; done; fi

validate: setup ## run the validation gates on dist/rendered/*
	@$(PY) scripts/validate.py

test: setup ## run every test, the integration tier included (pytest; fails on no tests; prints the slowest)
	@$(PY) -m pytest

# No server starts, no copy of the project, no per-version repeat of a whole-project check: dist/
# freshness, every gate on every environment, bad-input and unit tests (make test runs these and the rest).
check: .cache/crds.stamp $(VENV)/.stamp node_modules/.stamp bin/.stamp .venv-checkov/.stamp ## the fast loop: every test that starts no server (about a minute warm)
	@$(PY) -m pytest -q -n 2 -m "not servers and not tree and not slow and not integration and not delivery and not metrics and not admission" --dist worksteal --ignore=tests/integration --ignore=tests/delivery --ignore=tests/metrics --ignore=tests/admission

# The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl) is
# built by the tests themselves into .cache/controlplane/ on first use (KUBEBUILDER_ASSETS=<folder> to
# bring your own; KUBECHAT_USE_EXISTING_CLUSTER=1 with KUBECONFIG to test a real cluster instead).
integration: setup ## only the integration tier: a real Kubernetes control plane (tests/integration)
	@$(PY) -m pytest -m integration tests/integration

# The delivery tier: the real Argo CD and Argo Rollouts (built by the tests on first use into
# .cache/delivery/) syncing the overlays from a local git repository onto its own control plane.
delivery-test: setup ## only the delivery tier: real Argo CD and Argo Rollouts (tests/delivery)
	@$(PY) -m pytest -m delivery tests/delivery

# The metrics tier: the real Prometheus Operator (tools/prometheus-operator) configuring a real Prometheus
# from the rendered monitors and rules, stand-in exporters on loopback (built on first use into .cache/metrics/).
metrics-test: setup ## only the metrics tier: the real Prometheus Operator and Prometheus (tests/metrics)
	@$(PY) -m pytest -m metrics tests/metrics

# The admission tier: Kyverno's admission controller (tools/kyverno), cert-manager's controllers and Pebble
# (tools/cert-manager), a registry (tools/registry) with images signed by cosign; built on first use into .cache/.
admission-test: setup ## only the admission tier: Kyverno's webhook, cert-manager with Pebble, signed images (tests/admission)
	@$(PY) -m pytest -m admission tests/admission

# The edit loop: a process that keeps the typed libraries loaded renders again on each save (into dist/,
# or DIST=<folder>); a construct edit renders in about the floor's time instead of a synth process's.
watch: .cache/crds.stamp node_modules/.stamp bin/kustomize ## render on every save, in a warm process (DIST= another folder)
	@$(PY) scripts/watch.py $(if $(DIST),--dist $(DIST),)

bench: setup ## time a full render against its floor (empty app + trivial overlays)
	@$(PY) scripts/bench.py

imports: $(VENV)/.render-stamp node_modules/.stamp ## regenerate imports/ from the CRDs pinned in crds.yaml
	@$(PY) scripts/import_crds.py

lock: ## re-pin the Python lock files from requirements.txt (needs the registries)
	@rm -rf .lock-venv && $(PYTHON_BASE) -m venv .lock-venv && .lock-venv/bin/pip install --quiet -r requirements.txt
	@(echo "# Generated by 'make lock' from requirements.txt; do not edit."; .lock-venv/bin/pip freeze --all | grep -v "^pip==") > requirements.lock
	@rm -rf .lock-venv && $(PYTHON_BASE) -m venv .lock-venv && .lock-venv/bin/pip install --quiet -c requirements.lock -r requirements-render.txt
	@(echo "# Generated by 'make lock' from requirements-render.txt (versions as in requirements.lock); do not edit."; .lock-venv/bin/pip freeze --all | grep -v "^pip==") > requirements-render.lock
	@rm -rf .lock-venv && $(PYTHON_BASE) -m venv .lock-venv && .lock-venv/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	@(echo "# Generated by 'make lock': checkov and its dependencies, in a venv of their own (.venv-checkov)."; .lock-venv/bin/pip freeze) > requirements-checkov.lock
	@rm -rf .lock-venv

clean: ## remove the installed tools and caches (not dist/)
	rm -rf $(VENV) .venv-checkov node_modules bin .cache

restore-manifest: $(VENV)/.render-stamp ## recovery Cluster: ENV= and TARGET_TIME= | TARGET_LSN= | TARGET_NAME= (IN_PLACE=1, OUTPUT=file)
	@test -n "$(ENV)" || { echo "restore-manifest: set ENV=dev|staging|production"; exit 2; }
	@$(PY) scripts/restore_manifest.py --env $(ENV) \
	  $(if $(TARGET_TIME),--target-time "$(TARGET_TIME)",$(if $(TARGET_LSN),--target-lsn "$(TARGET_LSN)",$(if $(TARGET_NAME),--target-name "$(TARGET_NAME)",--latest))) \
	  $(if $(IN_PLACE),--in-place,) $(if $(OUTPUT),--output "$(OUTPUT)",)

diff: $(VENV)/.stamp node_modules/.stamp bin/.stamp ## per-environment semantic diff of the render against BASE=<git ref>
	@test -n "$(BASE)" || { echo "diff: set BASE=<git ref>, e.g. make diff BASE=origin/main"; exit 2; }
	@$(PY) scripts/diff.py "$(BASE)"

preflight: $(VENV)/.stamp bin/.stamp ## pre-upgrade checks: K8S=<version> offline, RELEASE=1 site values, CLUSTER=1 [ENV=] live
	@$(PY) scripts/preflight.py $(if $(K8S),--kubernetes-version $(K8S),) $(if $(RELEASE),--release,) $(if $(CLUSTER),--cluster,) $(if $(ENV),--env $(ENV),)

docs: $(VENV)/.stamp ## build the documentation site into site/ (strict: broken links fail)
	@$(VENV)/bin/mkdocs build --strict --quiet
	@echo "docs: built site/ (open site/index.html)"

# Laptop cluster (Rancher Desktop): kubectl against the current context, namespace kubechat-dev.
DEV_NS := kubechat-dev
DEV_PRIMARY = $$(kubectl -n $(DEV_NS) get cluster kubechat-db -o jsonpath='{.status.currentPrimary}')

# scripts/dev_deploy.py: Argo CD's order without Argo CD (waves, each waited for; the migration hook
# recreated, so a version or schema bump deploys again); server-side apply with --force-conflicts: on a
# laptop the last deployer owns dev. API_IMAGE= / WEB_IMAGE= deploy locally built images.
dev-deploy: $(VENV)/.render-stamp bin/kustomize ## deploy overlays/dev to the current kubectl context, wave by wave (API_IMAGE=, WEB_IMAGE=)
	@$(PY) scripts/dev_deploy.py $(if $(API_IMAGE),--api-image $(API_IMAGE),) $(if $(WEB_IMAGE),--web-image $(WEB_IMAGE),)

dev-open: $(VENV)/.render-stamp bin/kustomize ## reach dev's web, API, pgAdmin and redis-commander on 127.0.0.1 (kubectl port-forward) until Ctrl-C
	@$(PY) scripts/dev_open.py $(if $(DRY_RUN),--dry-run,)

dev-upgrade: dev-deploy ## after pulling a new version or schema: the same deployment, the migration runs again

# Local images from a KubeChat checkout (KUBECHAT_SRC, default ../kubechat) with the laptop's container
# runtime: nerdctl in Rancher Desktop's k8s.io namespace (the cluster sees them without a registry) when it
# is installed, otherwise docker (Rancher Desktop with dockerd, Docker Desktop, kind after `kind load`).
# Each build gets a tag of its own (a new tag is a new pod template, so the pods are replaced), and a
# rebuild of one component keeps the other's local image running.
KUBECHAT_SRC ?= ../kubechat
CONTAINER_BUILD ?= $(shell if command -v nerdctl >/dev/null 2>&1; then echo "nerdctl --namespace k8s.io build"; \
  elif command -v docker >/dev/null 2>&1; then echo "docker build"; fi)
DEV_TAG := dev-$(shell date +%Y%m%d%H%M%S)
dev-build: ## build kubechat-api:dev-<time> and kubechat-web:dev-<time> from KUBECHAT_SRC and deploy them
	@test -n "$(CONTAINER_BUILD)" || { echo "dev-build: neither nerdctl nor docker is on the PATH; install one, or set CONTAINER_BUILD='<your builder> build'"; exit 2; }
	$(CONTAINER_BUILD) -t kubechat-api:$(DEV_TAG) $(KUBECHAT_SRC)/api
	$(CONTAINER_BUILD) -t kubechat-web:$(DEV_TAG) $(KUBECHAT_SRC)/web
	@$(MAKE) --no-print-directory dev-deploy API_IMAGE=kubechat-api:$(DEV_TAG) WEB_IMAGE=kubechat-web:$(DEV_TAG)

dev-rebuild-api: $(VENV)/.render-stamp bin/kustomize ## rebuild the API image and deploy it (the web keeps its image)
	$(CONTAINER_BUILD) -t kubechat-api:$(DEV_TAG) $(KUBECHAT_SRC)/api
	@$(PY) scripts/dev_deploy.py --api-image kubechat-api:$(DEV_TAG) --keep-local-images

dev-rebuild-web: $(VENV)/.render-stamp bin/kustomize ## rebuild the web image and deploy it (the API keeps its image)
	$(CONTAINER_BUILD) -t kubechat-web:$(DEV_TAG) $(KUBECHAT_SRC)/web
	@$(PY) scripts/dev_deploy.py --web-image kubechat-web:$(DEV_TAG) --keep-local-images

dev-status: ## pods, database cluster and jobs of dev
	kubectl -n $(DEV_NS) get pods,cluster,pooler,jobs,cronjobs

dev-undeploy: ## delete dev's workloads (the database Cluster and volumes stay)
	kubectl -n $(DEV_NS) delete deployment,statefulset,cronjob,job,service,hpa,pdb,networkpolicy -l app.kubernetes.io/part-of=kubechat

dev-db-connect: ## psql into the dev database
	kubectl -n $(DEV_NS) exec -it $(DEV_PRIMARY) -c postgres -- psql -d kubechat

dev-db-status: ## schema version and dirty flag
	kubectl -n $(DEV_NS) exec $(DEV_PRIMARY) -c postgres -- psql -d kubechat -c 'SELECT version, dirty FROM schema_migrations'

dev-db-health: ## CloudNativePG's status of the dev cluster
	kubectl -n $(DEV_NS) get cluster kubechat-db -o wide
	kubectl -n $(DEV_NS) exec $(DEV_PRIMARY) -c postgres -- psql -d kubechat -c 'SELECT pg_is_in_recovery(), now() - pg_postmaster_start_time() AS uptime'

dev-db-integrity: ## verify the audit hash chain (no row = intact)
	kubectl -n $(DEV_NS) exec $(DEV_PRIMARY) -c postgres -- psql -d kubechat -c 'SELECT * FROM audit_verify_chain()'
