// A service's page: its record, why it failed (the failure kind, the
// reason, the engine's own error line and last lines), its start as a
// timeline, the engine's live figures, its logs and its events.

import {call} from './api.js';
import {h, fill, clear, chip, kv, fmtDuration, fmtDateTime, fmtTime, between} from './dom.js';
import {store, can, onChange, onEvent, onConnection, liveOf} from './store.js';
import {actionButtons} from './actions.js';
import {gpusText} from './services.js';
import {renderTimeline} from './timeline.js';
import {logPanel} from './logs.js';
import {figuresPanel} from './figures.js';

// headline is the reason without the engine's line, which shows apart.
function headline(s) {
  const r = s.reason || '';
  return s.engine_error ? r.replace(': ' + s.engine_error, '') : r;
}

function failureBox(s) {
  if (s.status !== 'failed') return null;
  return h('section', {class: 'panel failure', id: 'failure'},
    h('div', {class: 'panel-head'}, h('h2', {}, 'Failed'), s.failure ? h('span', {class: 'chip', 'data-status': 'failed'}, s.failure) : null),
    h('p', {class: 'reason', id: 'failure-reason', title: s.reason || ''}, headline(s)),
    s.engine_error ? h('div', {class: 'engine-error'}, h('span', {class: 'muted small'}, 'the engine said'), h('code', {id: 'engine-error'}, s.engine_error)) : null,
    kv([
      ['phase', s.phase],
      ['exit code', s.exit_code !== undefined && s.exit_code !== null ? String(s.exit_code) : ''],
      ['out of memory', s.oom_killed ? 'yes (OOM killed)' : ''],
      ['next restart', s.next_restart_at ? fmtDateTime(s.next_restart_at) : ''],
    ]),
    s.log_tail && s.log_tail.length ? h('details', {}, h('summary', {}, `last ${s.log_tail.length} log lines`),
      h('pre', {class: 'logs small'}, s.log_tail.join('\n'))) : null);
}

// trafficText summarises the requests the gateway passed to the service.
function trafficText(t) {
  if (!t) return '';
  const parts = [`${t.requests || 0} requests`, `${t.in_flight || 0} in flight`];
  if (t.waiting) parts.push(`${t.waiting} waiting`);
  if (t.failed) parts.push(`${t.failed} failed`);
  if (t.tokens_out) parts.push(`${t.tokens_in || 0} tokens in, ${t.tokens_out} out`);
  if (t.avg_ttft_ms) parts.push(`time to first token ${fmtDuration(t.avg_ttft_ms)} on average`);
  return parts.join(' · ');
}

function summary(s) {
  const ready = between(s.started_at, s.ready_at);
  const lease = s.gpu_lease;
  return kv([
    ['engine', s.engine_type],
    ['model', store.models.has(s.model_id) ? `${store.models.get(s.model_id).name} (${s.model_id})` : s.model_id],
    ['model path', s.model_path],
    ['engine loads', s.model_ref],
    ['image', s.image],
    ['endpoint', s.endpoint ? h('code', {}, s.endpoint) : ''],
    ['GPUs', gpusText(s)],
    ['GPU lease', lease && lease.per_gpu_bytes ? `${(lease.per_gpu_bytes / 2 ** 30).toFixed(1)} GiB per GPU` : ''],
    ['run', String(s.run || 0)],
    ['restarts', `${s.restart_count || 0} (policy ${s.restart_policy || 'no'})`],
    ['previous run', s.previous_exit],
    ['started', fmtDateTime(s.started_at)],
    ['ready in', ready !== null && ready >= 0 ? fmtDuration(ready) : ''],
    ['container', s.container_id ? s.container_id.slice(0, 12) : ''],
    ['args', (s.args || []).join(' ')],
    ['env', (s.env || []).join(' ')],
    ['gateway', trafficText(s.traffic)],
    ['warnings', (s.warnings || []).join('; ')],
  ]);
}

function eventsTable(history) {
  // Byte counts of a pull are for the timeline; the table lists the steps.
  const rows = history.filter(e => e.type !== 'progress' && e.type !== 'request').slice(-300).reverse().map(e => h('tr', {'data-type': e.type},
    h('td', {'data-label': 'time'}, h('div', {class: 'cell'}, fmtTime(e.time))),
    h('td', {'data-label': 'run'}, h('div', {class: 'cell'}, e.run ? String(e.run) : '')),
    h('td', {'data-label': 'type'}, h('div', {class: 'cell'}, e.type)),
    h('td', {'data-label': 'phase'}, h('div', {class: 'cell'}, e.phase || '')),
    h('td', {'data-label': 'message'}, h('div', {class: 'cell'}, e.message || '')),
    h('td', {'data-label': 'took'}, h('div', {class: 'cell'}, e.duration_ms !== undefined ? fmtDuration(e.duration_ms) : ''))));
  return h('table', {class: 'events', id: 'events'},
    h('thead', {}, h('tr', {}, ['Time', 'Run', 'Type', 'Phase', 'Message', 'Took'].map(c => h('th', {}, c)))),
    h('tbody', {}, rows));
}

// pulledIn is what the page saw of run s.run's pull.
function pulledIn(s) {
  const lp = liveOf(s.id).lastPull;
  return lp && lp.run === s.run ? lp.layers : null;
}

export function serviceView(main, id) {
  let history = [];
  let lastSeq = 0;
  let logs = null;
  let figures = null;
  let lastRun = null;
  const head = h('div', {class: 'panel-head'});
  const failure = h('div');
  const details = h('div');
  const timeline = h('div', {class: 'timeline-box'});
  const events = h('div', {class: 'table-wrap'});
  const figBox = h('div');
  const logBox = h('div');
  fill(main,
    h('p', {class: 'crumbs'}, h('a', {href: '#/services'}, '← Services')),
    h('section', {class: 'panel summary'}, head, details),
    failure,
    h('div', {class: 'two'},
      h('section', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h2', {}, 'Start')), timeline),
      figBox),
    logBox,
    h('section', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h2', {}, 'Events')), events));

  function render() {
    const s = store.services.get(id);
    if (!s) {
      fill(head, h('h1', {}, id), h('span', {class: 'muted'}, 'no such service (deleted?)'));
      clear(details); clear(failure); clear(timeline); clear(figBox);
      if (logs) { logs.close(); clear(logBox); logs = null; }
      return;
    }
    fill(head, h('h1', {}, s.name), chip(s.status, s.reason),
      s.status === 'creating' ? h('span', {class: 'muted'}, liveOf(id).phase || s.phase || '') : null,
      actionButtons(s));
    fill(details, summary(s));
    fill(failure, failureBox(s) || '');
    fill(timeline, renderTimeline(s, history, store.info.phases, pulledIn(s)));
    if (!logs) {
      logs = logPanel(s);
      logBox.appendChild(logs.el);
      logs.open();
    }
    if (!figures && can('service_metrics')) {
      figures = figuresPanel(id);
      figBox.appendChild(figures.el);
    }
    if (figures) figures.update(s);
    lastRun = s.run;
  }
  function renderEvents() { fill(events, eventsTable(history)); }

  async function loadHistory() {
    try {
      const out = await call('service_events', {service_id: id});
      const seen = new Set(out.items.map(e => e.seq));
      // Keep live-only events (pull bytes) of the stream that the journal
      // does not hold.
      history = [...out.items, ...history.filter(e => !seen.has(e.seq) && e.seq > 0)].sort((a, b) => a.seq - b.seq);
      lastSeq = history.length ? history[history.length - 1].seq : 0;
    } catch (e) {
      if (e.code === 'not_found') store.services.delete(id);
    }
    render();
    renderEvents();
  }

  const offEvent = onEvent(ev => {
    if (ev.service_id !== id) return;
    if (ev.seq > lastSeq || !history.some(e => e.seq === ev.seq)) {
      history.push(ev);
      lastSeq = Math.max(lastSeq, ev.seq);
    }
    if (ev.type === 'deleted') { render(); return; }
    if (ev.type !== 'progress' && ev.type !== 'request') renderEvents();
    // A new container has new output: follow it once it exists.
    const s = store.services.get(id);
    if (logs && !logs.previous && (ev.type === 'phase' && (ev.phase === 'start' || ev.phase === 'loading') || ev.type === 'status') && !logs.streaming) logs.open();
    fill(timeline, renderTimeline(s || {run: ev.run, status: ev.status}, history, store.info.phases, s && pulledIn(s)));
  });
  const offChange = onChange(changed => {
    if (changed !== null && changed !== id) return;
    const s = store.services.get(id);
    if (logs && s && lastRun !== null && s.run !== lastRun && !logs.previous) logs.open();
    render();
  });
  // After the stream comes back (e.g. the daemon restarted), read the
  // history again and follow the logs again.
  const offConn = onConnection((state, reopened) => {
    if (state !== 'live' || !reopened) return;
    loadHistory();
    if (logs && !logs.previous) logs.open();
  });

  if (!store.services.has(id)) {
    call('service_status', {service_id: id}).then(s => { store.services.set(id, s); render(); }).catch(() => render());
  }
  render();
  loadHistory();
  return {
    close() {
      offEvent(); offChange(); offConn();
      if (logs) logs.close();
      if (figures) figures.close();
    },
  };
}
