// reporting's JSON API, called with the signed-in reader's access token as a bearer token.

let auth = null;

export function useAuth(keycloak) {
  auth = keycloak;
}

/** A refusal of the API: its status, the error ``code`` and ``message``, and ``missing``. */
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    let message = err.message;
    if (!message && body && Array.isArray(body.detail)) {
      // FastAPI's own request validation: name each field that is wrong
      message = body.detail
        .map((d) => `${(d.loc || []).slice(1).join('.') || 'request'}: ${d.msg}`)
        .join('; ');
    }
    super(message || `the server answered ${status}`);
    this.status = status;
    this.code = err.code || (status === 0 ? 'network' : `http_${status}`);
    this.missing = err.missing || [];
  }
}

async function token() {
  try {
    await auth.updateToken(30);
  } catch {
    // the session at the provider ended: sign in again (comes back to this page)
    await auth.login();
    throw new ApiError(401, { error: { code: 'signed_out', message: 'your session ended' } });
  }
  return auth.token;
}

/**
 * Call the API; resolves to {data, etag, status} or throws an ApiError.
 * ``as: 'blob'`` answers the body as a Blob (the signed PDF).
 */
export async function request(path, { method = 'GET', body, headers = {}, as = 'json' } = {}) {
  const all = { Authorization: `Bearer ${await token()}`, ...headers };
  if (body !== undefined) all['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers: all, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, {
      error: { code: 'network', message: 'reporting did not answer; check the connection' },
    });
  }
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, data);
  }
  const data = as === 'blob' ? await res.blob() : await res.json();
  return { data, etag: res.headers.get('ETag'), status: res.status };
}

export async function api(path, options) {
  return (await request(path, options)).data;
}

/**
 * Hand the access token to the viewer's session (``/viewer/session``), which keeps it as an
 * HttpOnly cookie for the DICOMweb requests of the viewer embedded in the case page.
 */
export async function openViewerSession() {
  if (!auth) return false;
  try {
    const res = await fetch('/viewer/session', {
      method: 'POST', headers: { Authorization: `Bearer ${auth.token}` }, credentials: 'same-origin',
    });
    return res.ok;
  } catch {
    return false;
  }
}

export async function closeViewerSession() {
  try {
    await fetch('/viewer/session', { method: 'DELETE', credentials: 'same-origin' });
  } catch { /* signing out anyway */ }
}

export function idempotencyKey() {
  return crypto.randomUUID();
}
