"""deploy/k8s/secondread.yaml is current and every Deployment is hardened."""

from typing import Any

import yaml

from deploy.k8s.generate import OUT, ZONE, render
from secondread_shared.settings import SERVICE_PORTS


def docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(OUT.read_text()))


def test_committed_manifests_are_current() -> None:
    assert OUT.read_text() == render(), "deploy/k8s/secondread.yaml is stale: run `make k8s`"


def test_every_service_is_deployed_hardened_with_probes_and_resources() -> None:
    deployments = {d["metadata"]["name"]: d for d in docs() if d["kind"] == "Deployment"}
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
        if d["kind"] != "Deployment":
            continue
        service = d["metadata"]["name"].removeprefix("secondread-")
        [c] = d["spec"]["template"]["spec"]["containers"]
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"] if "valueFrom" in e}
        if ZONE[service] == "clear":
            assert not any("phi" in s or "deidentify" in s or "ingest" in s for s in secrets)
            assert "secondread-s3-clear" in secrets
        else:
            assert "secondread-s3-phi" in secrets
