// The other sections: models (add, remove), engines, GPUs (when the daemon
// serves gpu_list; cordon, uncordon, drain) and the daemon's health.

import {call, callStream} from './api.js';
import {h, fill, fmtBytes, fmtDateTime, kv, toast, confirmDialog, askDialog} from './dom.js';
import {store, can, onEvent} from './store.js';

// table renders rows of cells; rowAttrs, when given, are each row's
// attributes (e.g. data-gpu).
function table(id, columns, rows, rowAttrs) {
  return h('div', {class: 'table-wrap'}, h('table', {id, class: 'list'},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map((r, n) => h('tr', rowAttrs ? rowAttrs[n] : {}, r.map((c, i) => h('td', {'data-label': columns[i] || null}, h('div', {class: 'cell'}, c))))))));
}

function panel(title, ...children) {
  return h('section', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h1', {}, title)), ...children);
}

function failed(box, e) {
  fill(box, h('p', {class: 'error'}, e.message));
}

export function modelsView(main) {
  const box = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const path = h('input', {name: 'path', placeholder: '/models/qwen (a directory with config.json, or a .gguf file)', required: true});
  const name = h('input', {name: 'name', placeholder: 'name (optional)'});
  const add = can('model_add') ? h('form', {class: 'inline-form', id: 'model-add'}, path, name, h('button', {type: 'submit', class: 'primary'}, 'Add model')) : null;
  fill(main, panel('Models', add, box));
  async function load() {
    try {
      const l = await call('model_list', {});
      fill(box, l.items.length ? table('models', ['ID', 'Name', 'Format', 'Architecture', 'Size', 'Path', ''], l.items.map(m => [
        h('code', {}, m.id), m.name, m.format, m.architecture || '', fmtBytes(m.size_bytes), h('code', {class: 'small'}, m.path),
        can('model_remove') ? h('button', {type: 'button', class: 'danger', onclick: async () => {
          if (!(await confirmDialog(`Unregister model ${m.name}? Its files stay on disk.`, 'Remove'))) return;
          try { await call('model_remove', {model_id: m.id}); load(); } catch (e) { toast(e.message, 'error'); }
        }}, 'Remove') : null,
      ])) : h('p', {class: 'muted'}, 'No models registered.'));
    } catch (e) { failed(box, e); }
  }
  if (add) {
    add.addEventListener('submit', async ev => {
      ev.preventDefault();
      try {
        const input = {path: path.value.trim()};
        if (name.value.trim()) input.name = name.value.trim();
        const m = await call('model_add', input);
        toast(`added model ${m.name} (${m.id})`, 'ok');
        add.reset();
        load();
      } catch (e) { toast(e.message, 'error'); }
    });
  }
  load();
  return {close() {}};
}

export function enginesView(main) {
  const box = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  fill(main, panel('Engines', box));
  call('engine_list', {}).then(l => {
    fill(box, table('engines', ['Type', 'Image', 'Port', 'Health', 'GPUs', 'When idle', 'Args', 'Description'], l.items.map(e => [
      h('b', {}, e.type), h('code', {}, e.image), String(e.port), h('code', {}, e.health_path), e.gpus,
      e.can_sleep ? 'sleeps (wakes in seconds)' : 'stops (next request starts it)', (e.args || []).join(' '), e.description || '',
    ])));
  }).catch(e => failed(box, e));
  return {close() {}};
}

// serviceName is a service's name as the page knows it (its id otherwise).
function serviceName(id) {
  const s = store.services.get(id);
  return s ? s.name : id;
}

// maxDrainSteps bounds the steps a drain's panel keeps.
const maxDrainSteps = 500;

// drainStep is the line a drain's progress event shows, or null for those
// it does not (pull bytes).
function drainStep(ev) {
  const who = serviceName(ev.service_id);
  switch (ev.type) {
    case 'message': return `${who}: ${ev.message}`;
    case 'phase': return `${who}: ${ev.phase}`;
    case 'status': return `${who}: ${ev.message || ev.status}`;
    default: return null;
  }
}

export function gpusView(main) {
  const box = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  // The last drain started from this page: its steps as they come, then
  // each service's outcome.
  const drainBox = h('section', {id: 'gpu-drain', class: 'drain', hidden: true});
  fill(main, panel('GPUs', box, drainBox));
  const mem = d => (d.memory_total_bytes ? `${fmtBytes(d.memory_used_bytes)} / ${fmtBytes(d.memory_total_bytes)}` : 'not reported');
  // Cordon, uncordon and drain: the same operations as `aima gpu ...`.
  const act = async (op, input, done) => {
    try { await call(op, input); toast(done, 'ok'); } catch (e) { toast(e.message, 'error'); }
    load();
  };
  const drain = async d => {
    const reason = await askDialog(`Drain GPU ${d.index}? It is cordoned, and each service on it is stopped once its requests finish and started on another GPU where one fits.`,
      'Drain', {label: 'Reason (optional)', placeholder: 'e.g. driver update'});
    if (reason === null) return;
    const state = h('p', {class: 'drain-state', 'data-state': 'running'}, `Draining GPU ${d.index}…`);
    const steps = h('ol', {class: 'drain-steps'});
    const result = h('div', {class: 'drain-result'});
    fill(drainBox, h('h2', {}, `Drain of GPU ${d.index}`), state, result, steps);
    drainBox.hidden = false;
    try {
      const r = await callStream('gpu_drain', {gpu: d.uuid, reason}, ev => {
        const text = drainStep(ev);
        if (text === null) return;
        if (steps.childElementCount >= maxDrainSteps) steps.firstElementChild.remove();
        steps.appendChild(h('li', {'data-type': ev.type}, text));
        if (ev.type === 'status') load();
      });
      state.dataset.state = 'done';
      state.textContent = `GPU ${d.index} drained; it stays cordoned (uncordon it to use it again).`;
      fill(result, r.moves.length ? h('ul', {}, r.moves.map(mv => h('li', {'data-outcome': mv.outcome, 'data-service': mv.service_id},
        `${mv.name || mv.service_id} (was ${mv.was}): ${mv.outcome}${mv.to ? ` to GPU ${mv.to}` : ''}${mv.node ? ` on node ${mv.node}` : ''}${mv.reason ? `: ${mv.reason}` : ''}`)))
        : h('p', {class: 'muted'}, 'No service held it.'));
      toast(`GPU ${d.index} drained`, 'ok');
    } catch (e) {
      state.dataset.state = 'failed';
      state.textContent = `Drain of GPU ${d.index}: ${e.message}`;
      toast(e.message, 'error');
    }
    load();
  };
  const buttons = d => {
    const out = [];
    if (!d.cordon && can('gpu_cordon')) {
      out.push(h('button', {type: 'button', 'data-action': 'cordon', onclick: async () => {
        const reason = await askDialog(`Cordon GPU ${d.index}? No new service will be placed on it; those on it keep running.`,
          'Cordon', {label: 'Reason (optional)', placeholder: 'e.g. fan failing'});
        if (reason === null) return;
        act('gpu_cordon', {gpu: d.uuid, reason}, `GPU ${d.index} cordoned`);
      }}, 'Cordon'));
    }
    if (d.cordon && can('gpu_uncordon')) {
      out.push(h('button', {type: 'button', 'data-action': 'uncordon', onclick: () => act('gpu_uncordon', {gpu: d.uuid}, `GPU ${d.index} uncordoned`)}, 'Uncordon'));
    }
    if (can('gpu_drain') && (d.held_by || []).length) {
      out.push(h('button', {type: 'button', class: 'danger', 'data-action': 'drain', onclick: () => drain(d)}, 'Drain'));
    }
    return out.length ? h('span', {class: 'gpu-actions'}, ...out) : '';
  };
  // Reads overlap (an action's, an event's): only the newest is shown.
  let reads = 0;
  async function load() {
    const n = ++reads;
    try {
      const l = await call('gpu_list', {});
      if (n !== reads) return;
      fill(box,
        l.note ? h('p', {class: 'muted'}, l.note) : null,
        l.items.length ? table('gpus', ['#', 'Name', 'Memory', '', 'Utilization', 'Temperature', 'Held by', 'Cordon', ''], l.items.map(d => [
          String(d.index), d.name, mem(d),
          d.memory_total_bytes ? h('progress', {max: d.memory_total_bytes, value: d.memory_used_bytes || 0}) : '',
          d.utilization_percent !== undefined ? `${d.utilization_percent}%` : '',
          d.temperature_c !== undefined ? `${d.temperature_c} °C` : '',
          h('span', {class: 'held-by'}, (d.held_by || []).map(x => serviceName(x.service_id)).join(', ')),
          d.cordon ? h('span', {class: 'cordoned', title: d.cordon.at}, d.cordon.reason ? `cordoned: ${d.cordon.reason}` : 'cordoned') : '',
          buttons(d),
        ]), l.items.map(d => ({'data-gpu': String(d.index), 'data-uuid': d.uuid}))) : null);
    } catch (e) { if (n === reads) failed(box, e); }
  }
  // A service that starts or stops takes or frees a GPU: read the list
  // again when a status changes (once per burst of events).
  let again = null;
  const off = onEvent(ev => {
    if ((ev.type !== 'status' && ev.type !== 'deleted') || again) return;
    again = setTimeout(() => { again = null; load(); }, 100);
  });
  load();
  return {close() { off(); clearTimeout(again); }};
}

export function healthView(main) {
  const box = h('div', {id: 'health'}, h('p', {class: 'muted'}, 'Loading…'));
  fill(main, panel('Health', box));
  Promise.all([call('health_check', {}), call('system_doctor', {}).catch(e => ({error: e.message}))]).then(([hc, doc]) => {
    const info = store.info;
    const docker = hc.docker === 'ok';
    // On Kubernetes the runtime is the cluster's API server (doctor's report).
    const cl = doc.cluster;
    const runtimeName = cl ? 'Kubernetes API server' : 'Docker engine';
    fill(box,
      h('div', {class: 'health-grid'},
        h('div', {class: `health-item ${docker ? 'ok' : 'bad'}`, id: 'health-docker'}, h('b', {}, docker ? 'reachable' : 'unreachable'), h('span', {}, runtimeName)),
        h('div', {class: 'health-item'}, h('b', {}, hc.version), h('span', {}, 'aima version')),
        h('div', {class: 'health-item'}, h('b', {}, info.read_only ? 'read-only' : 'read-write'), h('span', {}, 'mode'))),
      kv([
        [cl ? 'runtime' : 'Docker', docker ? 'ok' : hc.docker],
        ...(cl ? [
          ['cluster', h('span', {id: 'health-cluster'}, `${cl.server}${cl.version ? ` (${cl.version})` : ''}, namespace ${cl.namespace}, engines reached by ${cl.endpoint === 'pod_ip' ? 'Pod IP' : 'the API server proxy'}`)],
          ['permissions missing', h('span', {id: 'health-cluster-missing'}, (cl.missing || []).join('\n') || 'none')],
          ['cluster check', cl.error || ''],
        ] : []),
        ['data dir', h('code', {id: 'health-datadir'}, info.data_dir || '')],
        ['state store', doc.store ? `${doc.store.backend || ''} ${doc.store.path || ''}` : ''],
        ['last backup', doc.store && doc.store.backup_at ? fmtDateTime(doc.store.backup_at) : ''],
        ['services', doc.services !== undefined ? String(doc.services) : ''],
        ['failed', (doc.failed || []).join('\n')],
        ['stranded', (doc.stranded || []).join('\n')],
        ['stuck', (doc.stuck || []).map(x => `${x.service_id}: ${x.status} since ${fmtDateTime(x.since)} (an operation on it has not returned; restart the daemon)`).join('\n')],
        ['orphan containers', (doc.orphans || []).map(o => o.name).join(', ')],
        ['warnings', (doc.warnings || []).join('\n')],
        ['doctor', doc.error || ''],
        ['statuses', info.statuses.join(' · ')],
        ['start phases', info.phases.join(' → ')],
      ]));
  }).catch(e => failed(box, e));
  return {close() {}};
}
