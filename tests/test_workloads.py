"""The API and web workloads in every environment: probes, security, availability, scale, footprint."""
import pytest

from conftest import find
from kubechat_tools.footprint import footprint

ENVS = ("dev", "staging", "production")
WORKLOADS = {"kubechat-api": {"http": 8080, "metrics": 9090}, "kubechat-web": {"http": 3000}}
PROBE_PATHS = {"kubechat-api": {"startupProbe": "/health/startup", "livenessProbe": "/health/live",
                                "readinessProbe": "/health/ready"},
               # the web's one health route decides readiness; its liveness is a TCP connect (18.6)
               "kubechat-web": {"startupProbe": "/api/health", "livenessProbe": None, "readinessProbe": "/api/health"}}


def pod_spec(docs, name):
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("name", WORKLOADS)
def test_probes_follow_the_contract_and_hit_declared_ports(rendered, env, name):
    container = pod_spec(rendered[env], name)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == WORKLOADS[name]
    for probe, path in PROBE_PATHS[name].items():
        if path is None:
            assert container[probe]["tcpSocket"]["port"] in ports, f"{name} {probe}: {container[probe]}"
            continue
        action = container[probe]["httpGet"]
        assert action["path"] == path and action["port"] in ports, f"{name} {probe}: {action}"


def pod_templates(docs):
    from kubechat_tools.gates import pod_template
    return [(f"{d['kind']}/{d['metadata']['name']}", t) for d in docs if (t := pod_template(d)) is not None]


@pytest.mark.parametrize("env", ENVS)
def test_no_container_restarts_on_what_only_makes_it_unready(rendered, env):
    """A liveness probe identical to the readiness probe restarts every pod when a dependency the
    readiness check includes fails (kube-score pod-probes-identical)."""
    same = [(where, c["name"]) for where, t in pod_templates(rendered[env]) for c in t["spec"]["containers"]
            if "livenessProbe" in c and "readinessProbe" in c
            and {k: v for k, v in c["livenessProbe"].items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}
            == {k: v for k, v in c["readinessProbe"].items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}]
    assert same == []


def quantity_bytes(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[:-len(unit)]) * factor
    return float(text)


LOG_AND_LAYER_ALLOWANCE = 256 * 2**20
"""What a pod's containers may write besides their emptyDirs (logs, writable layers) before eviction."""


@pytest.mark.parametrize("env", ENVS)
def test_every_container_bounds_its_node_disk_and_no_pod_is_evicted_for_its_own_emptydirs(rendered, env):
    """18.6 (kube-score container-ephemeral-storage-request-and-limit): every container requests and
    limits ephemeral storage; the kubelet evicts a pod whose emptyDirs, logs and writable layers exceed
    the sum of its containers' limits, so that sum covers the emptyDirs' sizeLimits and an allowance."""
    for where, template in pod_templates(rendered[env]):
        spec = template["spec"]
        containers = spec["containers"] + spec.get("initContainers", [])
        missing = [c["name"] for c in containers if "ephemeral-storage" not in c["resources"].get("requests", {})
                   or "ephemeral-storage" not in c["resources"].get("limits", {})]
        assert missing == [], f"{env} {where}: containers without ephemeral-storage request and limit: {missing}"
        limit = sum(quantity_bytes(c["resources"]["limits"]["ephemeral-storage"]) for c in containers)
        empty_dirs = sum(quantity_bytes(v["emptyDir"].get("sizeLimit", "1Ti")) for v in spec.get("volumes", [])
                         if "emptyDir" in v)
        assert limit >= empty_dirs + LOG_AND_LAYER_ALLOWANCE, \
            f"{env} {where}: ephemeral-storage limits {limit / 2**20:.0f}Mi < emptyDirs {empty_dirs / 2**20:.0f}Mi + 256Mi"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("name", WORKLOADS)
def test_restricted_security_context_and_writable_dirs_only_where_the_contract_says(rendered, env, name):
    spec = pod_spec(rendered[env], name)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 10000 and spec["securityContext"]["runAsGroup"] >= 10000
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    container = spec["containers"][0]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    expected = {"/tmp"} | ({"/app/.next/cache"} if name == "kubechat-web" else set())
    assert writable == expected
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]] or mount.get("readOnly"), mount
    # The one read-only volume: the API's database CA certificate, never the CA's key beside it in the Secret.
    read_only = [volumes[m["name"]] for m in container["volumeMounts"] if m.get("readOnly")]
    assert read_only == ([{"name": "database-ca", "secret": {"secretName": "kubechat-db-ca", "items": [
        {"key": "ca.crt", "path": "ca.crt"}]}}] if name == "kubechat-api" else [])


@pytest.mark.parametrize("env", ENVS)
def test_only_the_api_mounts_a_service_account_token(rendered, env):
    assert pod_spec(rendered[env], "kubechat-api")["automountServiceAccountToken"] is True
    assert pod_spec(rendered[env], "kubechat-web")["automountServiceAccountToken"] is False
    assert find(rendered[env], "ServiceAccount", "kubechat-web")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("name", WORKLOADS)
def test_rollouts_never_drop_capacity_and_drain_connections(rendered, env, name):
    deployment = find(rendered[env], "Deployment", name)
    assert "replicas" not in deployment["spec"], "the HPA owns replicas; Argo CD would fight it"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = deployment["spec"]["template"]["spec"]
    sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert sleep > 0 and spec["terminationGracePeriodSeconds"] > sleep


def test_api_drains_streaming_connections_within_its_grace_period(rendered):
    spec = pod_spec(rendered["production"], "kubechat-api")
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    sleep = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert sleep + int(env["SHUTDOWN_TIMEOUT_SECONDS"]) < spec["terminationGracePeriodSeconds"]
    assert int(env["SHUTDOWN_TIMEOUT_SECONDS"]) >= 30


@pytest.mark.parametrize("name, minimum", [("kubechat-api", 3), ("kubechat-web", 2)])
def test_production_has_hpa_pdb_and_spread(rendered, name, minimum):
    docs = rendered["production"]
    hpa = find(docs, "HorizontalPodAutoscaler", name)["spec"]
    # production scales the canary Rollout that owns the Deployment (progressive delivery)
    assert hpa["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name}
    assert hpa["minReplicas"] >= minimum and hpa["maxReplicas"] > hpa["minReplicas"]
    assert {m["resource"]["name"] for m in hpa["metrics"]} == {"cpu", "memory"}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    pdb = find(docs, "PodDisruptionBudget", name)["spec"]
    labels = find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in pdb["selector"]["matchLabels"].items())
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["maxUnavailable"] == 1 and hpa["minReplicas"] > 1, "one pod may always be evicted, never all"
    keys = {c["topologyKey"] for c in pod_spec(docs, name)["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_dev_fits_a_laptop(rendered):
    total = footprint(rendered["dev"])
    assert total.cpu_millis <= 1000, f"dev requests {total.cpu_millis}m CPU: {total.items}"
    assert total.memory_bytes <= 2 * 2**30, f"dev requests {total.memory_bytes / 2**20:.0f}Mi: {total.items}"


@pytest.mark.parametrize("env", ENVS)
def test_quota_admits_the_environment_at_its_maximum_scale(rendered, env):
    from kubechat_tools.footprint import quantity

    docs = rendered[env]
    quota = find(docs, "ResourceQuota", "kubechat-quota")["spec"]["hard"]
    cpu = memory = 0.0
    for name in WORKLOADS:
        hpa = find(docs, "HorizontalPodAutoscaler", name)["spec"]
        requests = pod_spec(docs, name)["containers"][0]["resources"]["requests"]
        # a rolling update adds up to 25% surge pods on top of the maximum
        pods = hpa["maxReplicas"] + -(-hpa["maxReplicas"] // 4)
        cpu += quantity(requests["cpu"]) * pods
        memory += quantity(requests["memory"]) * pods
    assert cpu <= quantity(quota["requests.cpu"]), f"{env}: {cpu} CPU at max scale > quota {quota['requests.cpu']}"
    assert memory <= quantity(quota["requests.memory"])


def test_footprint_counts_the_autoscalers_minimum_through_rollouts(rendered):
    items = {name: replicas for name, replicas, _, _ in footprint(rendered["production"]).items}
    assert items["Deployment/kubechat-api"] == 3 and items["Deployment/kubechat-web"] == 2
    assert items["Cluster/kubechat-db"] == 3
