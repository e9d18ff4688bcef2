// The page's one view of the daemon: the service records, kept current by
// the daemon-wide event stream (GET /api/events, one EventSource). The
// stream is opened first and the records are read after it is open, so no
// change falls between; a status, phase or created event re-reads that one
// record, a phase or progress event also updates what the record does not
// hold (when the phase began, pull bytes, the engine's last milestone).
// Nothing polls.

import {call} from './api.js';

export const store = {
  info: null,               // system_info: version, statuses, phases, operations
  services: new Map(),      // id -> service record
  models: new Map(),        // id -> model record (names for the table)
  live: new Map(),          // id -> {phase, phaseSince, pull: {layer: {current,total}}, message}
  conn: 'connecting',
};

const changeListeners = new Set();
const eventListeners = new Set();
const connListeners = new Set();

// onChange(f): f(id) after a service record changed (id null: all of them).
export function onChange(f) { changeListeners.add(f); return () => changeListeners.delete(f); }
// onEvent(f): f(ev) for every event of the stream.
export function onEvent(f) { eventListeners.add(f); return () => eventListeners.delete(f); }
// onConnection(f): f(state, reopened) when the stream's state changes.
export function onConnection(f) { connListeners.add(f); return () => connListeners.delete(f); }

function changed(id) { for (const f of changeListeners) f(id); }

export function can(op) {
  return Boolean(store.info && store.info.operations.some(o => o.name === op));
}

export function sortedServices() {
  return [...store.services.values()].sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
}

export async function loadServices() {
  call('model_list', {}).then(l => {
    store.models = new Map(l.items.map(m => [m.id, m]));
    changed(null);
  }).catch(() => {});
  const list = await call('service_list', {});
  store.services.clear();
  for (const s of list.items) {
    store.services.set(s.id, s);
    noteRecord(s);
  }
  changed(null);
  return list;
}

// noteRecord keeps the live facts consistent with a freshly read record.
function noteRecord(s) {
  const l = liveOf(s.id);
  if (s.status !== 'creating') {
    l.phase = null;
    return;
  }
  if (l.phase !== s.phase) {
    l.phase = s.phase;
    l.phaseSince = s.updated_at; // the record's time of entering the phase
    l.pull = {};
    l.message = '';
  }
}

export function liveOf(id) {
  let l = store.live.get(id);
  if (!l) {
    l = {phase: null, phaseSince: null, pull: {}, message: '', lastPull: null};
    store.live.set(id, l);
  }
  return l;
}

const pending = new Set();

// refresh re-reads one record once the events that arrived together are
// applied (the events of one change come in a burst).
export function refresh(id) {
  if (pending.has(id)) return;
  pending.add(id);
  setTimeout(async () => {
    pending.delete(id);
    try {
      const s = await call('service_status', {service_id: id});
      const old = store.services.get(id);
      if (old && old.updated_at > s.updated_at) return; // an older read came late
      store.services.set(id, s);
      noteRecord(s);
    } catch (e) {
      if (e.code !== 'not_found') return;
      store.services.delete(id);
    }
    changed(id);
  }, 0);
}

const lastRead = new Map();
const trailing = new Set();

// refreshAtMost re-reads a record at most once per interval (ms), for
// events that can come many times a second; the last of a run of them is
// always followed by a read.
function refreshAtMost(id, interval) {
  const wait = (lastRead.get(id) || 0) + interval - Date.now();
  if (wait > 0) {
    if (!trailing.has(id)) {
      trailing.add(id);
      setTimeout(() => { trailing.delete(id); lastRead.set(id, Date.now()); refresh(id); }, wait);
    }
    return;
  }
  lastRead.set(id, Date.now());
  refresh(id);
}

function apply(ev) {
  const id = ev.service_id;
  const s = store.services.get(id);
  const l = liveOf(id);
  switch (ev.type) {
    case 'phase':
      l.phase = ev.phase;
      l.phaseSince = ev.time;
      l.pull = {};
      l.message = ev.message || '';
      if (s) { s.status = 'creating'; s.phase = ev.phase; }
      refresh(id);
      break;
    case 'progress':
      // Status-only updates (e.g. "Pull complete") carry no bytes; the
      // daemon always sends a layer's last byte count (current = total).
      if (ev.layer && ev.total > 0) {
        l.pull[ev.layer] = {current: ev.current || 0, total: ev.total};
        // Byte counts are not kept in the history: remember the run's last.
        if (!l.lastPull || l.lastPull.run !== ev.run) l.lastPull = {run: ev.run, layers: {}};
        l.lastPull.layers[ev.layer] = l.pull[ev.layer];
      }
      break;
    case 'message':
      l.message = ev.message || '';
      break;
    case 'request': // an inference request ended: the record's traffic figures changed
      refreshAtMost(id, 1000);
      break;
    case 'deleted':
      store.services.delete(id);
      store.live.delete(id);
      break;
    default: // status, created, and any type added later: read the record
      if (s && ev.status) s.status = ev.status;
      refresh(id);
  }
  if (store.services.has(id) || ev.type === 'deleted') changed(id);
}

// pullBytes sums a service's live pull progress over its layers.
export function pullBytes(id) {
  const l = store.live.get(id);
  if (!l) return null;
  let current = 0, total = 0, n = 0;
  for (const p of Object.values(l.pull)) {
    if (p.total > 0) { current += Math.min(p.current, p.total); total += p.total; n++; }
  }
  return n ? {current, total, layers: n} : null;
}

let es = null;
let retryTimer = null;

function setConn(state, reopened) {
  store.conn = state;
  for (const f of connListeners) f(state, reopened);
}

// connect opens the daemon-wide stream. The browser reconnects by itself
// after a network error (the daemon sends retry: 1000); when it gives up
// (an HTTP error such as 401, or the page's own close) checkAuth decides
// and the page opens a new stream after a pause. Every open re-reads the
// records, so what happened while disconnected is shown.
export function connect(checkAuth) {
  clearTimeout(retryTimer);
  if (es) es.close();
  let opened = false;
  const source = new EventSource('/api/events');
  es = source;
  source.onopen = async () => {
    const reopened = opened || store.conn === 'reconnecting';
    opened = true;
    try {
      await loadServices();
      setConn('live', reopened);
    } catch (e) {
      setConn('reconnecting', false);
    }
  };
  source.addEventListener('progress', e => {
    let ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    apply(ev);
    for (const f of eventListeners) f(ev);
  });
  source.addEventListener('resync', () => { loadServices().catch(() => {}); setConn('live', true); });
  source.onerror = () => {
    if (source !== es) return;
    setConn('reconnecting', false);
    if (source.readyState === EventSource.CLOSED) {
      retryTimer = setTimeout(async () => {
        if (await checkAuth()) connect(checkAuth);
      }, 1500);
    }
  };
}
