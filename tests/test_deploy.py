"""deploy/k8s/secondread.yaml is current and every Deployment is hardened."""

from typing import Any

import yaml

from deploy.k8s.generate import OUT, ZONE, render
from secondread_shared.settings import SERVICE_PORTS


def docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(OUT.read_text()))


def test_committed_manifests_are_current() -> None:
    assert OUT.read_text() == render(), "deploy/k8s/secondread.yaml is stale: run `make k8s`"


WORKLOADS = ("Deployment", "StatefulSet")


def test_every_service_is_deployed_hardened_with_probes_and_resources() -> None:
    deployments = {d["metadata"]["name"]: d for d in docs() if d["kind"] in WORKLOADS}
    assert set(deployments) == {f"secondread-{s}" for s in SERVICE_PORTS}
    for service, port in SERVICE_PORTS.items():
        pod = deployments[f"secondread-{service}"]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        [c] = pod["containers"]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["ports"][0]["containerPort"] == port


def test_clear_zone_never_gets_phi_credentials() -> None:
    for d in docs():
        if d["kind"] not in WORKLOADS:
            continue
        service = d["metadata"]["name"].removeprefix("secondread-")
        [c] = d["spec"]["template"]["spec"]["containers"]
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in c["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        if ZONE[service] == "clear":
            assert not any("phi" in s or "deidentify" in s or "ingest" in s for s in secrets)
            assert "secondread-s3-clear" in secrets
        else:
            assert "secondread-s3-phi" in secrets


def test_ingest_keeps_its_spool_on_a_volume_per_replica_and_listens_on_the_pod_address() -> None:
    [ingest] = [d for d in docs() if d["metadata"]["name"] == "secondread-ingest"
                and d["kind"] in WORKLOADS]  # fmt: skip
    assert ingest["kind"] == "StatefulSet" and ingest["spec"]["replicas"] >= 2
    [claim] = ingest["spec"]["volumeClaimTemplates"]
    [c] = ingest["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    [mount] = [m for m in c["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert env["SECONDREAD_SPOOL_DIR"] == mount["mountPath"]
    assert env["SECONDREAD_DICOM_HOST"] == "0.0.0.0"
    assert env["SECONDREAD_REPLICA_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    governing = [d for d in docs() if d["kind"] == "Service"
                 and d["metadata"]["name"] == ingest["spec"]["serviceName"]]  # fmt: skip
    assert governing and governing[0]["spec"]["clusterIP"] == "None"


def test_the_grace_period_covers_both_graceful_phases() -> None:
    [common] = [d for d in docs() if d["metadata"]["name"] == "secondread-common"]
    grace = float(common["data"]["SECONDREAD_SHUTDOWN_GRACE_S"])
    for d in docs():
        if d["kind"] in WORKLOADS:
            assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 2 * grace


def test_every_manifest_validates_against_the_kubernetes_api_schemas() -> None:
    """Offline: kubernetes-validate bundles the schemas (strict: no unknown fields)."""
    import kubernetes_validate

    for d in docs():
        kubernetes_validate.validate(d, "1.33", strict=True)
