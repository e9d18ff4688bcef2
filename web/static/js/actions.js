// The lifecycle buttons of a service: start, stop, restart and delete, the
// same operations the CLI runs. They are always shown (read-only mode
// hides them, as the daemon does not serve them); the daemon decides what
// each does in the service's state and the page shows its answer (e.g.
// "already running") rather than guessing from a copy of the rules.

import {call} from './api.js';
import {h, toast, confirmDialog} from './dom.js';
import {can} from './store.js';

const labels = {service_start: 'Start', service_stop: 'Stop', service_restart: 'Restart', service_delete: 'Delete'};

async function run(op, s, button) {
  if (op === 'service_delete') {
    const ok = await confirmDialog(`Delete service ${s.name}? Its container, record and history are removed; the model files stay.`);
    if (!ok) return;
  }
  button.disabled = true;
  try {
    const out = await call(op, {service_id: s.id});
    const note = out && out.note;
    toast(note || `${labels[op].toLowerCase()}: ${s.name}`, 'ok');
    if (op === 'service_delete' && location.hash.startsWith('#/services/')) location.hash = '#/services';
  } catch (e) {
    toast(`${labels[op]} ${s.name}: ${e.message}`, 'error');
  } finally {
    button.disabled = false;
  }
}

// actionButtons returns the buttons the daemon serves, for service s.
export function actionButtons(s) {
  const box = h('div', {class: 'actions'});
  for (const op of Object.keys(labels)) {
    if (!can(op)) continue;
    const b = h('button', {
      type: 'button', class: op === 'service_delete' ? 'danger' : '', 'data-action': op.slice('service_'.length),
      title: `${labels[op]} ${s.name}`,
    }, labels[op]);
    b.addEventListener('click', ev => { ev.stopPropagation(); run(op, s, b); });
    box.appendChild(b);
  }
  return box.childElementCount ? box : null;
}
