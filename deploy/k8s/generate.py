"""Kubernetes manifests for secondread, generated from the code's service table.

``make k8s`` writes ``deploy/k8s/secondread.yaml``; ``tests/test_deploy.py`` fails when the
committed file is stale or a workload loses its hardening (ingest is a StatefulSet with a
persistent volume per replica for its C-STORE spool; the other services are Deployments). Apply with
``kubectl apply -f deploy/k8s/secondread.yaml`` after creating the secrets listed in
``docs/kubernetes.md``. Infrastructure (Kafka, S3, PostgreSQL, Orthanc, an OTLP collector, SMTP)
is managed elsewhere; its addresses are in the ``secondread-common`` ConfigMap.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from secondread_shared.settings import SERVICE_PORTS

OUT = Path(__file__).with_name("secondread.yaml")
NAMESPACE = "secondread"
IMAGE = "secondread-{service}:0.1.0"
ROSTER = Path(__file__).parents[1] / "roster.toml"
SPOOL_MOUNT = "/var/lib/secondread/spool"
SPOOL_SIZE = "20Gi"
"""ingest's C-STORE spool: acknowledged instances not stored yet (docs/ingest.md, Durability)."""
SHUTDOWN_GRACE_S = 15
"""SECONDREAD_SHUTDOWN_GRACE_S: requests, then messages in flight, each get this long."""

ZONE = {
    "ingest": "phi",
    "deidentify": "phi",
    "routing": "clear",
    "reporting": "clear",
    "notify": "phi",
}
"""PHI zone: may read identities. Clear zone: pseudonyms only (ARCHITECTURE.md, "Services")."""

PUBLIC = {"ingest", "reporting"}
"""Services that take traffic from outside the namespace (hospitals, radiologists)."""

RESOURCES = {
    "ingest": ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "4Gi"}),
    "deidentify": ({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "4Gi"}),
}
DEFAULT_RESOURCES = ({"cpu": "100m", "memory": "256Mi"}, {"cpu": "1", "memory": "1Gi"})

# Secret name -> keys, per service: each service reads only its own secrets.
SECRETS: dict[str, dict[str, str]] = {
    "ingest": {
        "SECONDREAD_API_KEYS": "secondread-ingest-api-keys",
        "SECONDREAD_PORTAL_LINK_KEY": "secondread-ingest-portal",
    },
    "deidentify": {
        "SECONDREAD_PSEUDONYM_KEY": "secondread-deidentify-keys",
        "SECONDREAD_VAULT_KEY": "secondread-deidentify-keys",
    },
    "reporting": {
        "SECONDREAD_SIGNING_MASTER_KEY": "secondread-reporting-keys",
    },
}


def _secret_env(name: str, secret: str, key: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "valueFrom": {"secretKeyRef": {"name": secret, "key": key or name.lower()}},
    }


def _env(service: str) -> list[dict[str, Any]]:
    zone = ZONE[service]
    env: list[dict[str, Any]] = [
        {"name": "SECONDREAD_SERVICE", "value": service},
        {"name": "SECONDREAD_SERVICE_NAME", "value": service},
        {"name": "SECONDREAD_HTTP_PORT", "value": str(SERVICE_PORTS[service])},
        {"name": "SECONDREAD_DB_USER", "value": service},
        _secret_env("SECONDREAD_DB_PASSWORD", f"secondread-{service}-db", "password"),
        # Object-store credentials are per zone: the clear zone cannot read PHI buckets.
        _secret_env("SECONDREAD_S3_ACCESS_KEY", f"secondread-s3-{zone}", "access_key"),
        _secret_env("SECONDREAD_S3_SECRET_KEY", f"secondread-s3-{zone}", "secret_key"),
    ]
    for var, secret in SECRETS.get(service, {}).items():
        env.append(_secret_env(var, secret))
    if service == "routing":
        env.append({"name": "SECONDREAD_ROSTER_PATH", "value": "/etc/secondread/roster.toml"})
    if service == "ingest":
        env += [
            # The Storage SCP must listen on the pod's address for the Service to reach it.
            {"name": "SECONDREAD_DICOM_HOST", "value": "0.0.0.0"},  # noqa: S104
            {"name": "SECONDREAD_SPOOL_DIR", "value": SPOOL_MOUNT},
        ]
    # The pod's name: how a replica names itself in shared coordination rows (spool backlog).
    env.append(
        {"name": "SECONDREAD_REPLICA_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    )
    return env


def _deployment(service: str) -> dict[str, Any]:
    port = SERVICE_PORTS[service]
    labels = {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "secondread",
              "secondread.io/zone": ZONE[service]}  # fmt: skip
    requests, limits = RESOURCES.get(service, DEFAULT_RESOURCES)
    ports = [{"name": "http", "containerPort": port}]
    if service == "ingest":
        ports.append({"name": "dicom", "containerPort": 11112})
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    # The only writable path: an emptyDir (the root filesystem is read-only).
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    if service == "routing":
        volumes.append({"name": "roster", "configMap": {"name": "secondread-roster"}})
        mounts.append({"name": "roster", "mountPath": "/etc/secondread", "readOnly": True})
    if service == "ingest":
        mounts.append({"name": "spool", "mountPath": SPOOL_MOUNT})
    container = {
        "name": service,
        "image": IMAGE.format(service=service),
        "imagePullPolicy": "IfNotPresent",
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": "secondread-common"}}],
        "env": _env(service),
        "resources": {"requests": requests, "limits": limits},
        "startupProbe": {**probe, "failureThreshold": 30, "periodSeconds": 2},
        "livenessProbe": probe,
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "replicas": 2,
        "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
    }
    if service == "ingest":
        # A StatefulSet: each replica keeps its own spool volume across restarts, so what a
        # replica acknowledged and had not stored yet is stored when it comes back.
        spec |= {
            "serviceName": f"secondread-{service}-pods",
            "podManagementPolicy": "Parallel",
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "spool"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": SPOOL_SIZE}},
                    },
                }
            ],
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if service == "ingest" else "Deployment",
        "metadata": {"name": f"secondread-{service}", "namespace": NAMESPACE, "labels": labels},
        "spec": {
            **spec,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": f"secondread-{service}",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # two graceful phases (requests, then messages) and the outbox drain
                    "terminationGracePeriodSeconds": 3 * SHUTDOWN_GRACE_S,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _service(service: str) -> dict[str, Any]:
    ports = [{"name": "http", "port": SERVICE_PORTS[service], "targetPort": "http"}]
    if service == "ingest":
        ports.append({"name": "dicom", "port": 11112, "targetPort": "dicom"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"secondread-{service}", "namespace": NAMESPACE},
        "spec": {"selector": {"app.kubernetes.io/name": service}, "ports": ports},
    }


def _headless_service(service: str) -> dict[str, Any]:
    """The StatefulSet's governing Service (stable pod names; no load balancing)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"secondread-{service}-pods", "namespace": NAMESPACE},
        "spec": {
            "clusterIP": "None",
            "selector": {"app.kubernetes.io/name": service},
            "ports": [{"name": "http", "port": SERVICE_PORTS[service], "targetPort": "http"}],
        },
    }


def _network_policy(service: str) -> dict[str, Any]:
    """Ingress: public services from anywhere on their ports; the others only from the
    monitoring namespace (metrics and probes come from the kubelet, which is not filtered)."""
    sources: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    rules: list[dict[str, Any]] = [{"from": sources}]
    if service in PUBLIC:
        rules.append({"ports": [{"port": p["port"]} for p in _service(service)["spec"]["ports"]]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"secondread-{service}", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "secondread-common", "namespace": NAMESPACE},
            "data": {
                "SECONDREAD_ENVIRONMENT": "production",
                "SECONDREAD_HTTP_HOST": "0.0.0.0",  # noqa: S104 (in-pod; NetworkPolicy fences it)
                "SECONDREAD_LOG_LEVEL": "INFO",
                "SECONDREAD_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
                "SECONDREAD_KAFKA_BOOTSTRAP": "kafka.secondread-infra.svc:9092",
                "SECONDREAD_S3_ENDPOINT": "s3.secondread-infra.svc:9000",
                "SECONDREAD_ORTHANC_URL": "http://orthanc.secondread-infra.svc:8042",
                "SECONDREAD_DB_HOST": "postgres.secondread-infra.svc",
                "SECONDREAD_DB_PORT": "5432",
                "SECONDREAD_OTLP_ENDPOINT": "http://otel-collector.secondread-infra.svc:4317",
                "SECONDREAD_SMTP_HOST": "smtp.secondread-infra.svc",
                "SECONDREAD_SMTP_PORT": "25",
                # Your OpenID Connect provider (its realm) and where patients reach the upload
                # portal: replace these example addresses before applying.
                "SECONDREAD_OIDC_ISSUER": "https://idp.hospital.example/realms/secondread",
                "SECONDREAD_PORTAL_PUBLIC_URL": "https://secondread.hospital.example/portal/",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "secondread-roster", "namespace": NAMESPACE},
            "data": {"roster.toml": ROSTER.read_text()},
        },
    ]
    for service in SERVICE_PORTS:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"secondread-{service}", "namespace": NAMESPACE},
                "automountServiceAccountToken": False,
            }
        )
        docs += [_deployment(service), _service(service), _network_policy(service)]
        if service == "ingest":
            docs.append(_headless_service(service))
    return docs


def render() -> str:
    header = "# Generated by deploy/k8s/generate.py (make k8s). Do not edit by hand.\n"
    return header + yaml.safe_dump_all(manifests(), sort_keys=False, width=100)


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stderr.write(f"wrote {OUT}\n")
