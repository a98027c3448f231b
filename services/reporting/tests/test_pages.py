"""The reading workspace's routes: pages, modules, the sign-in configuration and their headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from secondread_reporting.pages import WEB, mount_pages
from secondread_reporting.settings import ReportingSettings


def client(packages: Path) -> TestClient:
    app = FastAPI()
    mount_pages(app, ReportingSettings(web_packages_dir=packages))
    return TestClient(app)


def test_every_route_of_the_workspace_serves_the_page_with_its_policy(tmp_path: Path) -> None:
    c = client(tmp_path)
    for path in ("/read/", "/read/cases/case-1"):
        r = c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/read/static/app.js">' in r.text
        csp = r.headers["content-security-policy"]
        assert (
            "script-src 'self';" in csp and "connect-src 'self' blob: http://127.0.0.1:8180" in csp
        )
        assert r.headers["cache-control"] == "no-cache"
    assert c.get("/read", follow_redirects=False).headers["location"] == "/read/"
    module = c.get("/read/static/editor.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert c.get("/read/static/nothing.js").status_code == 404


def test_the_sign_in_configuration_names_the_provider_and_the_public_client(
    tmp_path: Path,
) -> None:
    body = client(tmp_path).get("/read/config.json").json()
    assert body["oidc_issuer"] == "http://127.0.0.1:8180/realms/secondread"
    assert body["client_id"] == "secondread-web"


def test_keycloak_js_comes_from_the_npm_packages_or_says_how_to_install_it(
    tmp_path: Path,
) -> None:
    missing = client(tmp_path).get("/read/vendor/keycloak.js")
    assert missing.status_code == 503 and "make up" in missing.json()["error"]["message"]
    lib = tmp_path / "keycloak-js" / "lib"
    lib.mkdir(parents=True)
    (lib / "keycloak.js").write_text("export default class Keycloak {}\n")
    served = client(tmp_path).get("/read/vendor/keycloak.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    assert served.text.startswith("export default class Keycloak")


def test_the_pages_ship_inside_the_package() -> None:
    names = {p.name for p in WEB.iterdir()}
    assert {"index.html", "read.css", "app.js", "editor.js", "merge.js"} <= names
