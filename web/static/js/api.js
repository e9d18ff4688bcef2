// The daemon's HTTP API as the page uses it: every operation is a
// same-origin POST of JSON to /api/<group>/<verb> (the access guard's rules
// for browsers: own origin, Content-Type application/json, the login
// cookie), and errors come back as {"error": {code, message, field}}.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
  }
}

let unauthenticated = () => {};

// onUnauthenticated sets what happens when the daemon answers 401 (the
// login cookie expired, or the token changed).
export function onUnauthenticated(f) { unauthenticated = f; }

export function opPath(op) {
  const i = op.indexOf('_');
  return `/api/${op.slice(0, i)}/${op.slice(i + 1)}`;
}

async function postJSON(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
      body: JSON.stringify(body || {}),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'unavailable', 'the aima daemon cannot be reached', '');
  }
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401) unauthenticated();
    throw new ApiError(res.status, err.code || 'internal', err.message || `HTTP ${res.status}`, err.field);
  }
  return data;
}

// call runs an operation by name (e.g. "service_start") with its input.
export function call(op, input) { return postJSON(opPath(op), input); }

// session says whether the page must log in (GET /ui/session, served
// without the token).
export async function session() {
  const res = await fetch('/ui/session', {credentials: 'same-origin', cache: 'no-store'});
  if (!res.ok) throw new ApiError(res.status, 'unavailable', `HTTP ${res.status}`, '');
  return res.json();
}

export function login(token) { return postJSON('/auth/login', {token}); }
export function logout() { return postJSON('/auth/logout', {}); }
