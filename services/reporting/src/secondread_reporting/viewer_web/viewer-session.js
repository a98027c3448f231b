// secondread: make sure the reader has a viewer session, keep it alive, then start OHIF.
// Served by reporting at /viewer/secondread/viewer-session.js (no CDN, no token in script).
//
// The session is an HttpOnly cookie that reporting sets (viewer_session.py): after its own
// OIDC sign-in (/viewer/signin: authorization code flow with PKCE, code exchanged by
// reporting), or when a page that holds a token POSTs it to /viewer/session. This script only
// asks who the session is, renews it before it expires, and sends the reader to sign in when
// there is none.

const cfg = window.secondreadViewer;
const status = document.getElementById('secondread-status');
const embedded = window.self !== window.top;

function show(message, { error = false, signIn = false } = {}) {
  status.hidden = false;
  status.setAttribute('role', error ? 'alert' : 'status');
  status.replaceChildren();
  const p = document.createElement('p');
  p.textContent = message;
  status.append(p);
  if (signIn && !embedded) {
    const a = document.createElement('a');
    a.href = signinUrl();
    a.textContent = 'Sign in again';
    status.append(a);
  }
}

function signinUrl() {
  const here = window.location.pathname + window.location.search;
  return `${cfg.signinUrl}?next=${encodeURIComponent(here)}`;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) {
    /* not JSON */
  }
  return `HTTP ${response.status}`;
}

async function session() {
  const response = await fetch(cfg.sessionUrl, { credentials: 'same-origin' });
  if (response.ok) return { ok: true, body: await response.json() };
  return { ok: false, status: response.status, message: await errorMessage(response) };
}

let started = false;
function startOhif() {
  if (started) return;
  started = true;
  status.hidden = true;
  const script = document.createElement('script');
  script.src = cfg.appBundle;
  script.addEventListener('error', () => show('The viewer could not be loaded.', { error: true }));
  document.head.append(script);
}

// Renew a session opened by /viewer/signin a while before it expires; a session handed over
// by another page is renewed by that page (it POSTs each new token).
function keepAlive(current) {
  let expiresAt = Date.now() + current.expires_in * 1000;
  const tick = async () => {
    if (expiresAt - Date.now() > 90000) return;
    const fresh = await session();
    if (fresh.ok && fresh.body.expires_in > 90) {
      expiresAt = Date.now() + fresh.body.expires_in * 1000;
      return;
    }
    if (!current.renewable) {
      if (!fresh.ok) show('Your viewer session has ended: open the viewer again.', { error: true, signIn: true });
      return;
    }
    const response = await fetch(`${cfg.sessionUrl}/renew`, {
      method: 'POST',
      credentials: 'same-origin',
    });
    if (response.ok) {
      expiresAt = Date.now() + (await response.json()).expires_in * 1000;
    } else {
      show(`Your sign-in has ended: ${await errorMessage(response)}`, { error: true, signIn: true });
    }
  };
  setInterval(tick, 15000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') tick();
  });
}

async function main() {
  let current;
  try {
    current = await session();
  } catch (exc) {
    show(`The viewer could not reach secondread: ${exc}`, { error: true });
    return;
  }
  if (current.ok) {
    keepAlive(current.body);
    startOhif();
    return;
  }
  if (current.status === 403) {
    show(current.message, { error: true });
  } else if (embedded) {
    show(`No viewer session (${current.message}). Open the viewer from the case.`, { error: true });
  } else {
    show('Signing you in…');
    window.location.assign(signinUrl());
  }
}

main();
