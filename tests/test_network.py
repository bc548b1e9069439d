"""Which pods may talk to which, evaluated from the rendered NetworkPolicies of every environment."""
import subprocess

import pytest

from kubechat_tools.netpol import Endpoint, allowed, pods_of

from conftest import ROOT, cloudnative_pg_operator_pod_labels

OPERATOR_POD_LABELS = cloudnative_pg_operator_pod_labels()

ENVS = {"dev": "kubechat-dev", "staging": "kubechat-staging", "production": "kubechat-production"}
PROXY = Endpoint(name="traefik", namespace="traefik", labels={"app.kubernetes.io/name": "traefik"})
"""The front door's pods: the platform's Traefik in its namespace (versions.TRAEFIK_NAMESPACE)."""
PROMETHEUS = Endpoint(name="prometheus", namespace="monitoring", labels={"app.kubernetes.io/name": "prometheus"})
DNS = Endpoint(name="coredns", namespace="kube-system", labels={"k8s-app": "kube-dns"})
OTHER_TENANT = Endpoint(name="intruder", namespace="team-a", labels={"app": "intruder"})
LAPTOP = Endpoint(name="another machine on the laptop's network", ip="192.168.5.1")
KUBERNETES_API = Endpoint(name="kube-apiserver", ip="10.96.0.1")
INTERNET = Endpoint(name="example.com", ip="93.184.216.34")


def database(namespace):
    """Where the data tier's pods will run: any pod of the namespace that is neither api nor web."""
    return Endpoint(name="postgres", namespace=namespace, labels={"cnpg.io/cluster": "kubechat-db"},
                    ports={"postgresql": 5432})


@pytest.fixture(params=list(ENVS))
def env(request, rendered):
    docs = rendered[request.param]
    pods = pods_of(docs)
    return request.param, docs, pods["kubechat-api"], pods["kubechat-web"]


def test_the_front_door_reaches_web_and_api_on_http_only(env):
    _, docs, api, web = env
    assert allowed(docs, PROXY, web, "http")
    assert allowed(docs, PROXY, api, "http")
    assert not allowed(docs, PROXY, api, "metrics")


def test_web_reaches_the_api_and_nothing_else(env):
    name, docs, api, web = env
    assert allowed(docs, web, api, "http")
    assert not allowed(docs, web, api, "metrics")
    assert not allowed(docs, web, database(ENVS[name]), 5432), "web must not reach the database"
    assert not allowed(docs, web, KUBERNETES_API, 443)
    assert not allowed(docs, web, INTERNET, 443)


def test_api_reaches_the_kubernetes_api_but_not_the_internet_on_other_ports(env):
    _, docs, api, _ = env
    assert allowed(docs, api, KUBERNETES_API, 443) and allowed(docs, api, KUBERNETES_API, 6443)
    assert not allowed(docs, api, INTERNET, 80)


def test_every_pod_resolves_dns_and_nothing_else_reaches_kube_system(env):
    _, docs, api, web = env
    for pod in (api, web):
        assert allowed(docs, pod, DNS, 53, "UDP") and allowed(docs, pod, DNS, 53, "TCP")
        assert not allowed(docs, pod, Endpoint(name="etcd", namespace="kube-system", labels={"component": "etcd"}), 2379)


def test_prometheus_scrapes_api_metrics(env):
    _, docs, api, web = env
    assert allowed(docs, PROMETHEUS, api, "metrics")
    assert not allowed(docs, PROMETHEUS, web, "http")


def test_other_namespaces_cannot_reach_kubechat(env):
    _, docs, api, web = env
    assert not allowed(docs, OTHER_TENANT, api, "http")
    assert not allowed(docs, OTHER_TENANT, web, "http")
    assert not allowed(docs, api, web, "http"), "nothing calls the front end from inside"


def test_no_environment_listens_beyond_the_cluster_and_dev_is_forwarded_on_loopback_only(rendered, tmp_path):
    """No NodePort or LoadBalancer Service anywhere (a NodePort listens on every address of every node), no
    policy admits web or API from outside the cluster; dev is reached by `make dev-open`, which forwards the
    annotated Services on 127.0.0.1 only (run here as the laptop runs it, with --dry-run: no cluster)."""
    for env_name in ENVS:
        docs = rendered[env_name]
        pods = pods_of(docs)
        assert not allowed(docs, LAPTOP, pods["kubechat-web"], "http"), env_name
        assert not allowed(docs, LAPTOP, pods["kubechat-api"], "http"), env_name
        services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
        assert {s.get("type", "ClusterIP") for s in services.values()} == {"ClusterIP"}, env_name
    result = subprocess.run(["make", "--no-print-directory", "dev-open", "DRY_RUN=1"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    forwards = [line for line in result.stdout.splitlines() if line.startswith("+ kubectl port-forward")]
    assert sorted(forwards) == sorted(
        f"+ kubectl port-forward --address 127.0.0.1 -n kubechat-dev svc/{svc} {local}:{port}"
        for svc, local, port in (("kubechat-web", 30001, 3000), ("kubechat-api", 30080, 8080),
                                 ("kubechat-pgadmin", 30050, 8080), ("kubechat-redis-commander", 30081, 8081)))


def test_the_evaluator_itself_denies_by_default_and_allows_without_policies():
    pod = Endpoint(name="a", namespace="x", labels={"app": "a"}, ports={"http": 80})
    other = Endpoint(name="b", namespace="x", labels={"app": "b"})
    assert allowed([], other, pod, "http")
    deny = [{"kind": "NetworkPolicy", "metadata": {"name": "d", "namespace": "x"},
             "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}]
    assert not allowed(deny, other, pod, "http")


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_the_front_door_reaches_the_acme_solver_and_nothing_else_does(rendered, env_name):
    """cert-manager's HTTP-01 solver pod (labels and port from cert-manager v1.21.1 pkg/issuer/acme/http:
    acme.cert-manager.io/http01-solver=true, acmeSolverListenPort 8089) is reachable from the front
    door (Traefik, which routes the challenge's HTTPRoute) on 8089 only; it reaches nothing."""
    from kubechat_deploy.versions import ACME_HTTP01_SOLVER_LABEL, ACME_HTTP01_SOLVER_PORT

    docs = rendered[env_name]
    solver = Endpoint(name="cm-acme-http-solver", namespace=ENVS[env_name],
                      labels={ACME_HTTP01_SOLVER_LABEL: "true"}, ports={"http": ACME_HTTP01_SOLVER_PORT})
    assert allowed(docs, PROXY, solver, ACME_HTTP01_SOLVER_PORT)
    assert not allowed(docs, PROXY, solver, 8080)
    assert not allowed(docs, OTHER_TENANT, solver, ACME_HTTP01_SOLVER_PORT)
    assert not allowed(docs, pods_of(docs)["kubechat-web"], solver, ACME_HTTP01_SOLVER_PORT)
    assert not allowed(docs, solver, INTERNET, 443)
    assert not allowed(docs, solver, pods_of(docs)["kubechat-api"], "http")


@pytest.mark.parametrize("env_name", list(ENVS))
def test_the_database_operators_job_pods_reach_what_they_need_and_nothing_else(rendered, env_name):
    """14.1: CloudNativePG's Job pods carry cnpg.io/jobRole, not cnpg.io/podRole (v1.30.0 pkg/specs/jobs.go,
    pkg/reconciler/majorupgrade/job.go; the evaluator's inventory, kubechat_tools/netpol.py OPERATOR_PODS,
    lists every role). initdb and the recoveries need the API server and the object store (the recovery
    Cluster of `make restore-manifest`), a join (a new replica's pg_basebackup) the primary on 5432."""
    docs = rendered[env_name]
    pods = pods_of(docs)
    instance = pods["kubechat-db"]
    for role in ("initdb", "join", "full-recovery", "snapshot-recovery", "major-upgrade"):
        job = pods[f"kubechat-db-{role}"]
        assert job.labels["cnpg.io/jobRole"] == role and "cnpg.io/podRole" not in job.labels
        assert allowed(docs, job, KUBERNETES_API, 443) and allowed(docs, job, KUBERNETES_API, 6443), role
        assert allowed(docs, job, DNS, 53, "UDP"), role
        assert not allowed(docs, OTHER_TENANT, job, 5432) and not allowed(docs, pods["kubechat-api"], job, 5432), role
        assert allowed(docs, job, instance, "postgresql") is (role == "join"), role
    for role in ("full-recovery", "snapshot-recovery"):
        assert allowed(docs, pods[f"kubechat-db-{role}"], INTERNET, 443), f"{role} cannot read the object store"
    # Roles KubeChat does not use (bootstrap from another database) stay denied.
    for role in ("import", "pgbasebackup"):
        assert not allowed(docs, pods[f"kubechat-db-{role}"], INTERNET, 5432), role
        assert not allowed(docs, pods[f"kubechat-db-{role}"], KUBERNETES_API, 443), role


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_the_side_by_side_recovery_cluster_bootstraps_and_archives(rendered, env_name, tmp_path):
    """The Cluster `make restore-manifest` writes (kubechat-db-r<stamp>) runs under the environment's
    policies: its full-recovery Job reads the object store, a replica joins its primary, its instances
    archive to the object store and answer the operator."""
    import subprocess
    import sys

    import yaml

    from conftest import ROOT

    out = tmp_path / "recovery.yaml"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "restore_manifest.py"), "--env", env_name, "--latest",
                             "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    recovery = yaml.safe_load(out.read_text())
    docs = rendered[env_name]
    pods = pods_of([recovery])
    name = recovery["metadata"]["name"]
    instance, job, join = pods[name], pods[f"{name}-full-recovery"], pods[f"{name}-join"]
    operator = Endpoint(name="cnpg-controller-manager", namespace="cnpg-system", labels=OPERATOR_POD_LABELS)
    assert allowed(docs, job, INTERNET, 443) and allowed(docs, job, KUBERNETES_API, 443)
    assert allowed(docs, join, instance, "postgresql")
    assert allowed(docs, instance, INTERNET, 443), "the recovered instances cannot archive their WAL"
    assert allowed(docs, operator, instance, "status") and allowed(docs, operator, instance, "postgresql")
    assert not allowed(docs, OTHER_TENANT, instance, "postgresql")


def test_the_environments_admit_the_namespace_the_platform_runs_traefik_in():
    from kubechat_deploy.platform.prerequisites import PREREQUISITES
    from kubechat_deploy.security.network import NetworkProps

    assert NetworkProps().proxy_namespace == next(p.namespace for p in PREREQUISITES if p.name == "traefik")


def test_during_a_move_from_ingress_nginx_both_front_doors_reach_web_and_api_and_only_then():
    """docs/platform.md, "Moving a running cluster from ingress-nginx": users reach the old front door until DNS
    has moved, so its namespace is admitted beside Traefik's while NetworkProps.legacy_proxy_namespaces names
    it, and never otherwise (the synthesized policies, evaluated with the project's NetworkPolicy model)."""
    from cdk8s import App

    from kubechat_deploy.chart import KubeChatChart, KubeChatProps
    from kubechat_deploy.security.network import NetworkProps

    nginx = Endpoint(name="ingress-nginx-controller", namespace="ingress-nginx", labels={"app.kubernetes.io/name": "ingress-nginx"})
    for legacy in ((), ("ingress-nginx",)):
        app = App()
        chart = KubeChatChart(app, "kubechat", props=KubeChatProps(network=NetworkProps(legacy_proxy_namespaces=legacy)))
        docs = chart.to_json()
        for doc in docs:  # the environment's namespace, as its transformer sets it
            doc["metadata"].setdefault("namespace", "kubechat")
        pods = pods_of(docs)
        for workload in ("kubechat-api", "kubechat-web"):
            assert allowed(docs, PROXY, pods[workload], "http"), workload
            assert allowed(docs, nginx, pods[workload], "http") == bool(legacy), (workload, legacy)
            assert not allowed(docs, OTHER_TENANT, pods[workload], "http")


def test_the_monitoring_and_logging_namespaces_admit_only_who_needs_them(rendered):
    """#31.5: Prometheus, Alertmanager, Grafana and Loki answer without authentication; the platform's
    NetworkPolicies (dist/platform/delivery for monitoring, dist/platform/logging) admit only their own
    namespace's pods, Argo Rollouts' analysis queries, the API server's webhook calls and Grafana's Loki
    queries. Pod labels as the charts render them (constructs/kubechat_deploy/platform/network_policies.py)."""
    from kubechat_tools.manifests import load_dir

    docs = load_dir(ROOT / "dist" / "platform" / "delivery") + load_dir(ROOT / "dist" / "platform" / "logging")
    prometheus = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}, {"web": 9090})
    alertmanager = Endpoint("alertmanager", "monitoring", {"app.kubernetes.io/name": "alertmanager"}, {"web": 9093})
    grafana = Endpoint("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"}, {"grafana": 3000})
    operator = Endpoint("prometheus-operator", "monitoring",
                        {"app.kubernetes.io/name": "kube-prometheus-stack-prometheus-operator"}, {"https": 10250})
    loki = Endpoint("loki", "logging", {"app.kubernetes.io/name": "loki"}, {"http-metrics": 3100})
    alloy = Endpoint("alloy", "logging", {"app.kubernetes.io/name": "alloy"})
    rollouts = Endpoint("argo-rollouts", "argo-rollouts", {"app.kubernetes.io/name": "argo-rollouts"})
    api_server = Endpoint("kube-apiserver", ip="192.168.1.10")
    for env_name in ("staging", "production"):
        api = pods_of(rendered[env_name])["kubechat-api"]
        for target, port in ((prometheus, "web"), (alertmanager, "web"), (grafana, "grafana"), (loki, "http-metrics")):
            assert not allowed(docs, api, target, port), (env_name, target.name)
    assert allowed(docs, grafana, prometheus, "web") and allowed(docs, grafana, alertmanager, "web")
    assert allowed(docs, prometheus, alertmanager, "web") and allowed(docs, prometheus, grafana, "grafana")
    assert allowed(docs, rollouts, prometheus, "web") and not allowed(docs, rollouts, alertmanager, "web")
    assert allowed(docs, api_server, operator, "https") and not allowed(docs, api_server, prometheus, "web")
    assert allowed(docs, alloy, loki, "http-metrics") and allowed(docs, grafana, loki, "http-metrics")
    assert not allowed(docs, rollouts, loki, "http-metrics") and not allowed(docs, loki, prometheus, "web")
