"""Optional log aggregation, a platform component (dist/platform/logging/): Argo CD Applications for
Loki (single binary, retention set) and Grafana Alloy collecting the pods' stdout in the KubeChat
namespaces, parsing their JSON lines. Apply it once per cluster: `kubectl apply -k dist/platform/logging`
(or let the platform root application pick it up)."""
from __future__ import annotations

from cdk8s_plus_28 import k8s
from constructs import Construct

import imports.argocd.io.argoproj as argo

from kubechat_deploy.platform.props import LoggingProps
from kubechat_deploy.labels import standard_labels

GRAFANA_CHARTS = "https://grafana.github.io/helm-charts"


def alloy_config(props: LoggingProps, loki_url: str) -> str:
    # Alloy runs as a DaemonSet: each instance tails the pods of its own node only, or every instance would
    # ship every pod's logs (duplicates times the node count). The chart sets HOSTNAME to the node's name
    # (grafana/alloy operations/helm/charts/alloy/templates/containers/_agent.yaml: HOSTNAME from
    # spec.nodeName); the field selector is the API server's, so each instance also watches less.
    return f"""discovery.kubernetes "pods" {{
  role = "pod"
  namespaces {{
    own_namespace = false
  }}
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "kubechat" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = ["__meta_kubernetes_namespace"]
    regex         = "{props.namespaces_regex}"
    action        = "keep"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    target_label  = "app_kubernetes_io_component"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_label_job_name"]
    target_label  = "job_name"
  }}
}}

loki.source.kubernetes "pods" {{
  targets    = discovery.relabel.kubechat.output
  forward_to = [loki.process.json.receiver]
}}

// KubeChat logs one JSON object per line: promote the level to a label, keep the rest as the line.
loki.process "json" {{
  stage.json {{
    expressions = {{ level = "level" }}
  }}
  stage.labels {{
    values = {{ level = "" }}
  }}
  forward_to = [loki.write.default.receiver]
}}

loki.write "default" {{
  endpoint {{
    url = "{loki_url}"
  }}
}}
"""


class LoggingPlatform(Construct):
    def __init__(self, scope: Construct, id: str, *, props: LoggingProps) -> None:
        super().__init__(scope, id)
        labels = standard_labels("logging")
        # Applied with this piece by hand (`kubectl apply -k dist/platform/logging`): its NetworkPolicies live
        # in this namespace, so it exists before Loki's Application creates anything in it.
        k8s.KubeNamespace(self, "namespace", metadata=k8s.ObjectMeta(name=props.namespace, labels=labels))
        loki_url = f"http://loki-gateway.{props.namespace}.svc/loki/api/v1/push"
        app = lambda name, chart, version, values: argo.Application(  # noqa: E731
            self, name, metadata={"name": f"platform-{name}", "namespace": props.argocd_namespace, "labels": labels},
            spec=argo.ApplicationSpec(
                project=props.project,
                destination=argo.ApplicationSpecDestination(server="https://kubernetes.default.svc",
                                                            namespace=props.namespace),
                source=argo.ApplicationSpecSource(repo_url=GRAFANA_CHARTS, chart=chart, target_revision=version,
                                                  helm=argo.ApplicationSpecSourceHelm(release_name=name,
                                                                                      values_object=values)),
                sync_policy=argo.ApplicationSpecSyncPolicy(
                    automated=argo.ApplicationSpecSyncPolicyAutomated(prune=True, self_heal=True),
                    sync_options=["CreateNamespace=true", "ServerSideApply=true"])))
        app("loki", "loki", props.loki_chart_version, {
            "deploymentMode": "SingleBinary",
            "loki": {"auth_enabled": False, "commonConfig": {"replication_factor": 1},
                     "storage": {"type": "filesystem"},
                     "schemaConfig": {"configs": [{"from": "2025-01-01", "store": "tsdb", "object_store": "filesystem",
                                                   "schema": "v13", "index": {"prefix": "index_", "period": "24h"}}]},
                     "limits_config": {"retention_period": props.retention},
                     "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"}},
            "singleBinary": {"replicas": 1, "persistence": {"size": "50Gi"}},
            "read": {"replicas": 0}, "write": {"replicas": 0}, "backend": {"replicas": 0},
            "chunksCache": {"enabled": False}, "resultsCache": {"enabled": False},
        })
        app("alloy", "alloy", props.alloy_chart_version, {
            "alloy": {"configMap": {"content": alloy_config(props, loki_url)}},
            "controller": {"type": "daemonset"},
        })
