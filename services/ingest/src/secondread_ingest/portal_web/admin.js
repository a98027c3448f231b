// Hospital admins: sign in with OIDC (authorization code + PKCE S256, keycloak-js, public client)
// and create upload links for their hospital (the token's `hospital` claim).

import Keycloak from "/portal/vendor/keycloak.js";

const $ = (id) => document.getElementById(id);
let kc = null;

function notice(text, kind = "info") {
  $("notice").className = text ? `notice ${kind}` : "";
  $("notice").textContent = text;
}

async function call(path, options = {}) {
  await kc.updateToken(30);
  const resp = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${kc.token}` },
  });
  const body = await resp.json().catch(() => ({}));
  return { ok: resp.ok, status: resp.status, body };
}

async function refresh() {
  const { ok, body } = await call("/portal/api/links");
  if (!ok) {
    notice(body.error ? body.error.message : "The links cannot be listed.", "error");
    return;
  }
  const rows = body.links.map((l) => {
    const tr = document.createElement("tr");
    for (const v of [
      new Date(l.created_at).toLocaleString(),
      l.created_by.split(":").pop(),
      new Date(l.expires_at).toLocaleString(),
      `${l.cases} of ${l.max_cases}`,
      l.status,
    ]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  });
  document.querySelector("#links tbody").replaceChildren(...rows);
}

async function create(ev) {
  ev.preventDefault();
  $("max_cases-error").textContent = "";
  $("max_cases").removeAttribute("aria-invalid");
  const max = Number($("max_cases").value);
  if (!Number.isInteger(max) || max < 1 || max > 100) {
    $("max_cases").setAttribute("aria-invalid", "true");
    $("max_cases-error").textContent = "Cases it may open: a whole number from 1 to 100";
    $("max_cases").focus();
    return;
  }
  const { ok, body } = await call("/portal/api/links", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ expires_in: $("expires_in").value, max_cases: max }),
  });
  if (!ok) {
    notice(body.error ? body.error.message : "The link could not be created.", "error");
    return;
  }
  notice("");
  $("created-url").value = body.url;
  $("created-expiry").textContent = new Date(body.expires_at).toLocaleString();
  $("created").hidden = false;
  $("created-url").focus();
  $("created-url").select();
  refresh();
}

async function main() {
  const config = await (await fetch("/portal/config.json")).json();
  const issuer = new URL(config.oidc_issuer);
  kc = new Keycloak({
    url: issuer.origin,
    realm: issuer.pathname.split("/realms/")[1],
    clientId: config.client_id,
  });
  let authenticated = false;
  try {
    authenticated = await kc.init({ pkceMethod: "S256", checkLoginIframe: false });
  } catch (exc) {
    notice(`Sign-in is unavailable: ${exc && exc.error ? exc.error : exc}`, "error");
  }
  $("sign-in").addEventListener("click", () => kc.login({ redirectUri: location.href }));
  if (!authenticated) {
    $("signed-out").hidden = false;
    return;
  }
  const roles = (kc.tokenParsed.realm_access || {}).roles || [];
  const hospital = kc.tokenParsed.hospital;
  if (!roles.includes("hospital_admin") || !hospital) {
    notice(
      `${kc.tokenParsed.preferred_username} is not a hospital administrator: links need the ` +
        "hospital_admin role and a hospital.",
      "error",
    );
    return;
  }
  $("who").textContent = `Signed in as ${kc.tokenParsed.preferred_username}, hospital “${hospital}”.`;
  $("signed-in").hidden = false;
  $("create").addEventListener("submit", create);
  $("sign-out").addEventListener("click", () => kc.logout({ redirectUri: location.href }));
  $("copy").addEventListener("click", async () => {
    await navigator.clipboard.writeText($("created-url").value).catch(() => {});
    notice("The link is copied.", "ok");
  });
  refresh();
}

main();
