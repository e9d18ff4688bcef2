// The create-service form: the fields of service_create, with the models
// and engines the daemon knows offered as choices. The daemon validates;
// an error that names a field marks that field.

import {call} from './api.js';
import {h, toast} from './dom.js';
import {can} from './store.js';

function lines(text) {
  return text.split('\n').map(s => s.trim()).filter(Boolean);
}

export function createForm(done) {
  const models = h('datalist', {id: 'model-choices'});
  const engine = h('select', {name: 'engine_type', required: true});
  const field = (label, input, hint) => h('label', {'data-field': input.name}, label, input, hint ? h('small', {class: 'muted'}, hint) : null);
  const model = h('input', {name: 'model_id', list: 'model-choices', required: true, placeholder: 'model id, name, or org/name', autocomplete: 'off'});
  const name = h('input', {name: 'name', placeholder: 'default: the service id', autocomplete: 'off'});
  const port = h('input', {name: 'port', type: 'number', min: 1, max: 65535, placeholder: 'from the daemon’s range'});
  const gpus = h('input', {name: 'gpus', placeholder: 'the engine’s default', autocomplete: 'off'});
  const args = h('textarea', {name: 'args', rows: 2, placeholder: '--max-model-len=8192'});
  const env = h('textarea', {name: 'env', rows: 2, placeholder: 'KEY=VALUE'});
  const policy = h('select', {name: 'restart_policy'}, h('option', {value: ''}, 'no'), h('option', {value: 'on-failure'}, 'on-failure'));
  const startNow = h('input', {type: 'checkbox', name: 'start', checked: can('service_start')});
  const error = h('p', {class: 'error', hidden: true});
  const submit = h('button', {type: 'submit', class: 'primary'}, 'Create');
  const form = h('form', {class: 'create', id: 'create-form', autocomplete: 'off'},
    h('div', {class: 'grid'},
      field('Model', model), field('Engine', engine), field('Name', name), field('Port', port),
      field('GPUs', gpus, 'all, none, or device ids'), field('Restart policy', policy),
      field('Engine args', args, 'one per line'), field('Environment', env, 'one KEY=VALUE per line')),
    models,
    can('service_start') ? h('label', {class: 'inline'}, startNow, ' start it now') : null,
    error,
    h('div', {class: 'buttons'}, h('button', {type: 'button', onclick: () => done()}, 'Cancel'), submit));

  call('engine_list', {}).then(l => {
    // vllm first when the catalog has it: aima's main engine.
    const items = [...l.items].sort((a, b) => (b.type === 'vllm') - (a.type === 'vllm'));
    for (const e of items) engine.appendChild(h('option', {value: e.type}, `${e.type} (${e.image})`));
  }).catch(() => {});
  call('model_list', {}).then(l => {
    for (const m of l.items) models.appendChild(h('option', {value: m.id}, m.name ? `${m.name} (${m.format || ''})` : m.id));
  }).catch(() => {});

  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    error.hidden = true;
    for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
    const input = {model_id: model.value.trim(), engine_type: engine.value};
    if (name.value.trim()) input.name = name.value.trim();
    if (port.value) input.port = Number(port.value);
    if (gpus.value.trim()) input.gpus = gpus.value.trim();
    if (lines(args.value).length) input.args = lines(args.value);
    if (lines(env.value).length) input.env = lines(env.value);
    if (policy.value) input.restart_policy = policy.value;
    submit.disabled = true;
    try {
      const s = await call('service_create', input);
      for (const w of s.warnings || []) toast(w, 'warn');
      if (startNow.checked) await call('service_start', {service_id: s.id});
      toast(`created ${s.name}${startNow.checked ? ', starting' : ''}`, 'ok');
      form.reset();
      done();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      const f = e.field && form.querySelector(`[data-field="${CSS.escape(e.field)}"]`);
      if (f) f.classList.add('invalid');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
