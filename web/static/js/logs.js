// A service's logs: the engine container's real stdout and stderr,
// followed live (service_logs with follow=true as Server-Sent Events), with
// follow (keep the newest line in view), pause, a filter, download, and
// the previous run's last lines.

import {call, opPath} from './api.js';
import {h, clear, download} from './dom.js';
import {store, can} from './store.js';

const keep = 5000; // lines kept in the page
const tail = 500;  // lines read when the stream opens

export function logPanel(service) {
  let lines = [];
  let es = null;
  let paused = false;
  let unseen = 0;
  let streaming = false;
  const box = h('pre', {class: 'logs', id: 'logs', tabindex: 0, 'aria-label': 'logs'});
  const state = h('span', {class: 'muted', id: 'log-state'});
  const follow = h('input', {type: 'checkbox', checked: true, id: 'log-follow'});
  const filter = h('input', {type: 'search', placeholder: 'filter', id: 'log-filter', 'aria-label': 'filter log lines'});
  const previous = h('input', {type: 'checkbox', id: 'log-previous'});
  const pause = h('button', {type: 'button', id: 'log-pause'}, 'Pause');
  const save = h('button', {type: 'button', id: 'log-download'}, 'Download');
  const el = h('section', {class: 'panel logs-panel'},
    h('div', {class: 'panel-head'}, h('h2', {}, 'Logs'), state),
    h('div', {class: 'toolbar'},
      h('label', {class: 'inline'}, follow, ' follow'),
      pause, filter,
      can('service_logs') ? h('label', {class: 'inline', title: 'the last lines of the run before the current one'}, previous, ' previous run') : null,
      save),
    box);

  const matches = l => !filter.value || l.text.toLowerCase().includes(filter.value.toLowerCase());
  const lineEl = l => h('span', {class: `line ${l.stream === 'stderr' ? 'stderr' : ''}`}, l.text + '\n');

  function redraw() {
    clear(box);
    const frag = document.createDocumentFragment();
    for (const l of lines) if (matches(l)) frag.appendChild(lineEl(l));
    box.appendChild(frag);
    scroll();
  }
  function scroll() { if (follow.checked) box.scrollTop = box.scrollHeight; }
  function add(l) {
    lines.push(l);
    if (lines.length > keep + keep / 5) { lines = lines.slice(-keep); if (!paused) redraw(); }
    if (paused) { unseen++; status(); return; }
    if (matches(l)) { box.appendChild(lineEl(l)); scroll(); }
  }
  function status(text) {
    if (text !== undefined) state.dataset.base = text;
    state.textContent = (state.dataset.base || '') + (paused ? ` · paused, ${unseen} new` : '');
  }
  function close() {
    if (es) { es.close(); es = null; }
    streaming = false;
  }
  // open reads the last lines and follows; it starts over (a new container
  // has new logs, and a stream cut by a daemon restart would repeat lines).
  function open() {
    close();
    lines = [];
    redraw();
    if (previous.checked) { showPrevious(); return; }
    status('connecting…');
    const q = new URLSearchParams({service_id: service.id, follow: 'true', tail: String(tail)});
    const source = new EventSource(`${opPath('service_logs')}?${q}`);
    es = source;
    streaming = true;
    source.onopen = () => status('following');
    source.addEventListener('log', e => { try { add(JSON.parse(e.data)); } catch (err) { /* skip */ } });
    source.addEventListener('result', () => { close(); status('the container’s output ended'); });
    source.addEventListener('error', e => {
      if (source !== es) return;
      if (e.data) { // the operation's error, e.g. no container yet
        let msg = 'no logs';
        try { msg = JSON.parse(e.data).error.message; } catch (err) { /* keep */ }
        close();
        status(msg);
        return;
      }
      close(); // the connection broke: the page reopens when it is back
      status('disconnected');
    });
  }
  async function showPrevious() {
    status('previous run');
    try {
      const out = await call('service_logs', {service_id: service.id, previous: true, tail: -1});
      lines = out.lines;
      redraw();
    } catch (e) {
      status(e.message);
    }
  }

  follow.addEventListener('change', scroll);
  filter.addEventListener('input', redraw);
  previous.addEventListener('change', open);
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    unseen = 0;
    if (!paused) redraw();
    status();
  });
  save.addEventListener('click', async () => {
    try {
      const out = await call('service_logs', {service_id: service.id, previous: previous.checked, tail: -1, timestamps: true});
      const text = out.lines.map(l => (l.time && !l.time.startsWith('0001') ? l.time + ' ' : '') + l.text).join('\n') + '\n';
      // The record of now: the panel outlives runs (a restart while open).
      const s = store.services.get(service.id) || service;
      download(`${s.name}-run${s.run}${previous.checked ? '-previous' : ''}.log`, text);
    } catch (e) {
      status(e.message);
    }
  });

  return {
    el,
    open,
    close,
    // streaming: whether a follow is open (else a new container or the
    // daemon's return calls for open).
    get streaming() { return streaming; },
    get previous() { return previous.checked; },
  };
}
