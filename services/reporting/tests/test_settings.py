"""reporting's settings refuse the local demo identity provider outside a local stack."""

from __future__ import annotations

import pytest


def test_the_local_demo_provider_is_refused_outside_local() -> None:
    from pydantic import ValidationError

    from secondread_reporting.settings import ReportingSettings

    assert ReportingSettings(environment="local").oidc_issuer.startswith("http://127.0.0.1")
    with pytest.raises(ValidationError, match="SECONDREAD_OIDC_ISSUER"):
        ReportingSettings(environment="production")
    ok = ReportingSettings(environment="production", oidc_issuer="https://idp.example/realms/x")
    assert ok.oidc_issuer == "https://idp.example/realms/x"
