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

// maxEventBytes bounds one event of a streamed answer.
const maxEventBytes = 1 << 20;

// callStream runs a long operation (e.g. "gpu_drain") with its progress
// streamed (Accept: text/event-stream, as the CLI follows it): onEvent gets
// each progress event as it comes; the answer is the "result" event's
// value, and an "error" event or a stream that ends without a result
// throws.
export async function callStream(op, input, onEvent) {
  let res;
  try {
    res = await fetch(opPath(op), {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'Accept': 'text/event-stream'},
      body: JSON.stringify(input || {}),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'unavailable', 'the aima daemon cannot be reached', '');
  }
  if (!res.ok || !res.body) {
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    const err = (data && data.error) || {};
    if (res.status === 401) unauthenticated();
    throw new ApiError(res.status, err.code || 'internal', err.message || `HTTP ${res.status}`, err.field);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw new ApiError(0, 'unavailable', 'the connection to the aima daemon was lost before the result', '');
    }
    if (chunk.done) break;
    buf += decoder.decode(chunk.value, {stream: true});
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      let v;
      try { v = JSON.parse(data.join('\n')); } catch (e) { continue; }
      if (name === 'result') { reader.cancel().catch(() => {}); return v; }
      if (name === 'error') {
        reader.cancel().catch(() => {});
        const err = (v && v.error) || {};
        throw new ApiError(res.status, err.code || 'internal', err.message || 'the operation failed', err.field);
      }
      if (name === 'progress') onEvent(v);
    }
    if (buf.length > maxEventBytes) {
      reader.cancel().catch(() => {});
      throw new ApiError(0, 'internal', `an event of the answer exceeds ${maxEventBytes} bytes`, '');
    }
  }
  throw new ApiError(0, 'unavailable', 'the answer ended before its result', '');
}

// session says whether the page must log in (GET /ui/session, served
// without the token).
export async function session() {
  const res = await fetch('/ui/session', {credentials: 'same-origin', cache: 'no-store'});
  if (!res.ok) throw new ApiError(res.status, 'unavailable', `HTTP ${res.status}`, '');
  return res.json();
}

export function login(token) { return postJSON('/auth/login', {token}); }
export function logout() { return postJSON('/auth/logout', {}); }
