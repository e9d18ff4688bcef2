// The services table: one row per service, updated in place as the event
// stream reports changes; and the form that creates a service.

import {h, fill, clear, chip, elapsed, fmtDuration, fmtBytes, between} from './dom.js';
import {store, can, onChange, sortedServices, liveOf, pullBytes} from './store.js';
import {actionButtons} from './actions.js';
import {createForm} from './create.js';

const columns = ['Name', 'Status', 'Phase', 'Engine', 'Model', 'GPUs', 'Endpoint', 'Restarts', 'Ready in', ''];

// gpusText shows the GPUs a service holds when it holds a lease, else what
// it asks for.
export function gpusText(s) {
  const lease = s.gpu_lease;
  if (lease && Array.isArray(lease.devices) && lease.devices.length) {
    return lease.devices.map(d => `#${d.index}${d.name ? ' ' + d.name : ''}`).join(', ');
  }
  return s.gpus || '';
}

// phaseCell says where a start is: the phase, for how long, pull bytes
// with a bar, and the engine's latest milestone; for a failed start, the
// phase it died in.
export function phaseCell(s) {
  const l = liveOf(s.id);
  if (s.status === 'creating') {
    const phase = l.phase || s.phase || '';
    const out = [h('span', {class: 'phase', 'data-phase': phase}, phase), ' ', elapsed(l.phaseSince || s.updated_at)];
    const pb = phase === 'pull' ? pullBytes(s.id) : null;
    if (pb) {
      out.push(h('div', {class: 'pull'},
        h('progress', {max: pb.total, value: pb.current}),
        h('span', {class: 'bytes'}, `${fmtBytes(pb.current)} / ${fmtBytes(pb.total)}`)));
    }
    if (l.message) out.push(h('div', {class: 'milestone muted'}, l.message));
    return out;
  }
  if (s.status === 'failed') {
    return [s.failure ? h('span', {class: 'failure-kind'}, s.failure) : null, s.phase ? h('span', {class: 'muted'}, ` in ${s.phase}`) : null,
      s.engine_error || s.reason ? h('div', {class: 'milestone muted', title: s.reason || ''}, s.engine_error || s.reason) : null];
  }
  return h('span', {class: 'muted nothing'}, '—');
}

// modelCell names a registered model by its name (the id on hover).
export function modelCell(s) {
  const m = store.models.get(s.model_id);
  return h('span', {class: 'model', title: `${s.model_id} → ${s.model_ref || ''}`}, m ? m.name : s.model_id);
}

function readyIn(s) {
  const d = between(s.started_at, s.ready_at);
  return d === null || d < 0 ? '' : fmtDuration(d);
}

function row(s) {
  const link = h('a', {href: `#/services/${encodeURIComponent(s.id)}`, class: 'name'}, s.name);
  const cells = [
    [link, s.name !== s.id ? h('div', {class: 'muted small'}, s.id) : null],
    [chip(s.status, s.reason), s.stale ? h('span', {class: 'stale', title: 'the Docker engine is unreachable: last known status'}, ' stale') : null],
    phaseCell(s),
    s.engine_type,
    modelCell(s),
    gpusText(s),
    s.endpoint ? h('code', {class: 'endpoint', title: s.endpoint}, s.endpoint.replace(/^https?:\/\//, '')) : '',
    String(s.restart_count || 0),
    readyIn(s),
    actionButtons(s),
  ];
  return h('tr', {'data-id': s.id, 'data-status': s.status},
    cells.map((c, i) => h('td', {'data-label': columns[i] || null, class: `col-${i}`}, h('div', {class: 'cell'}, c))));
}

export function servicesView(main) {
  const tbody = h('tbody');
  const empty = h('p', {class: 'empty muted'}, 'No services yet.', can('service_create') ? ' Create one with “New service”.' : '');
  const table = h('table', {class: 'services', id: 'services'},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col'}, c)))), tbody);
  const formBox = h('div', {class: 'form-box', hidden: true});
  const newButton = can('service_create')
    ? h('button', {type: 'button', class: 'primary', id: 'new-service', onclick: () => toggleForm()}, 'New service')
    : null;
  function toggleForm(show = formBox.hidden) {
    formBox.hidden = !show;
    if (show && !formBox.firstChild) formBox.appendChild(createForm(() => toggleForm(false)));
  }
  fill(main,
    h('section', {class: 'panel'},
      h('div', {class: 'panel-head'}, h('h1', {}, 'Services'), h('span', {class: 'muted', id: 'service-count'}), newButton),
      formBox,
      h('div', {class: 'table-wrap'}, table),
      empty));

  function renderAll() {
    clear(tbody);
    for (const s of sortedServices()) tbody.appendChild(row(s));
    after();
  }
  function renderOne(id) {
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    const s = store.services.get(id);
    if (!s) { if (old) old.remove(); after(); return; }
    const fresh = row(s);
    if (old) { old.replaceWith(fresh); return; }
    renderAll(); // a new service: keep the order
  }
  function after() {
    const n = store.services.size;
    empty.hidden = n > 0;
    table.hidden = n === 0;
    document.getElementById('service-count').textContent = n ? `${n}` : '';
  }
  renderAll();
  const off = onChange(id => (id === null ? renderAll() : renderOne(id)));
  return {close: off};
}

