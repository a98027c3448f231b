// The reading workspace: sign-in (OIDC authorization code flow with PKCE S256, keycloak-js
// against the configured provider), then a small router over two pages:
//   /read/                the worklist
//   /read/cases/<id>      the case, its viewer and the report editor
import Keycloak from '/read/vendor/keycloak.js';
import { closeViewerSession, openViewerSession, useAuth } from './api.js';
import { h } from './dom.js';
import { renderWorklist } from './worklist.js';
import { renderCase } from './case.js';

const main = document.getElementById('main');
let leaving = [];
let user = { name: '', username: '' };

export function navigate(path) {
  if (path === location.pathname) return route();
  history.pushState({}, '', path);
  return route();
}

function route() {
  for (const hook of leaving) hook();
  leaving = [];
  // each page renders into a container of its own: a page still loading when the reader moves
  // on writes into a detached one, never into the next page
  const container = h('div');
  main.replaceChildren(container);
  const page = {
    main: container,
    navigate,
    user,
    onLeave: (hook) => leaving.push(hook),
    /** After rendering: put the focus on the page's heading, as a new page would. */
    focusHeading: () => container.querySelector('h1')?.focus(),
  };
  const match = location.pathname.match(/^\/read\/cases\/([^/]+)\/?$/);
  if (match) return renderCase(page, decodeURIComponent(match[1]));
  return renderWorklist(page);
}

function fail(title, detail) {
  main.replaceChildren(h('h1', { tabindex: -1 }, title), h('p', { role: 'alert' }, detail));
}

async function start() {
  let config;
  try {
    config = await (await fetch('/read/config.json')).json();
  } catch {
    return fail('The workspace could not start', 'reporting did not answer /read/config.json.');
  }
  const keycloak = new Keycloak({ oidcProvider: config.oidc_issuer, clientId: config.client_id });
  try {
    await keycloak.init({ onLoad: 'login-required', pkceMethod: 'S256', checkLoginIframe: false });
  } catch (err) {
    return fail(
      'Sign-in failed',
      `The identity provider at ${config.oidc_issuer} did not answer or refused the sign-in ` +
        `(${(err && (err.error || err.message)) || 'no detail'}). Reload the page to try again.`,
    );
  }
  useAuth(keycloak);
  // a refreshed token renews the embedded viewer's session too; refresh before it runs out
  keycloak.onAuthRefreshSuccess = () => { openViewerSession(); };
  window.setInterval(() => keycloak.updateToken(90).catch(() => {}), 60_000);
  const claims = keycloak.tokenParsed || {};
  const roles = (claims.realm_access && claims.realm_access.roles) || [];
  user = { name: claims.name || '', username: claims.preferred_username || '' };
  document.getElementById('who').textContent = `Signed in as ${user.name || user.username}`;
  const signOut = document.getElementById('sign-out');
  signOut.hidden = false;
  signOut.addEventListener('click', async () => {
    for (const hook of leaving) hook();
    await closeViewerSession();
    keycloak.logout({ redirectUri: `${location.origin}/read/` });
  });
  if (!roles.includes('radiologist')) {
    return fail(
      'This workspace is for radiologists',
      `You are signed in as ${user.username}, without the radiologist role. ` +
        'Sign out and sign in as a radiologist.',
    );
  }
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-nav]');
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.getAttribute('href'));
  });
  window.addEventListener('popstate', route);
  route();
}

start();
