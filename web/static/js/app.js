// The dashboard's entry point: log in when the daemon wants its token, read
// what the daemon is (system_info: statuses, phases, operations, read-only
// mode), open the live stream, and route between the sections by the URL's
// hash (#/services, #/services/ID, #/models, #/engines, #/gpus, #/health).

import {call, session, login, logout, onUnauthenticated} from './api.js';
import {h, fill, tickElapsed, toast} from './dom.js';
import {store, can, connect, onConnection} from './store.js';
import {servicesView} from './services.js';
import {serviceView} from './service.js';
import {modelsView, enginesView, gpusView, healthView} from './pages.js';

let view = null;
let tokenRequired = false;

function askToken() {
  const dlg = document.getElementById('login-dialog');
  const form = document.getElementById('login-form');
  const input = document.getElementById('login-token');
  const error = document.getElementById('login-error');
  return new Promise(resolve => {
    form.onsubmit = async ev => {
      ev.preventDefault();
      error.hidden = true;
      try {
        await login(input.value);
        input.value = '';
        dlg.close();
        resolve();
      } catch (e) {
        error.textContent = e.status === 401 ? 'That is not the daemon’s token.' : e.message;
        error.hidden = false;
      }
    };
    dlg.addEventListener('cancel', e => e.preventDefault()); // nothing works without it
    if (!dlg.open) dlg.showModal();
    input.focus();
  });
}

// checkAuth is asked when the stream gives up: it logs in again when the
// cookie has expired, and reports whether to reconnect.
async function checkAuth() {
  try {
    const s = await session();
    if (!s.authenticated) {
      await askToken();
      location.reload();
      return false;
    }
  } catch (e) { /* the daemon is away: keep trying */ }
  return true;
}

const routes = [
  [/^#\/services\/(.+)$/, 'services', (main, m) => serviceView(main, decodeURIComponent(m[1]))],
  [/^#\/models$/, 'models', main => modelsView(main)],
  [/^#\/engines$/, 'engines', main => enginesView(main)],
  [/^#\/gpus$/, 'gpus', main => gpusView(main)],
  [/^#\/health$/, 'health', main => healthView(main)],
  [/^/, 'services', main => servicesView(main)],
];

function route() {
  if (view) view.close();
  const main = document.getElementById('main');
  for (const [re, nav, make] of routes) {
    const m = location.hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
    view = make(main, m);
    return;
  }
}

function showHeader() {
  const info = store.info;
  document.getElementById('version').textContent = `v${info.version}`;
  document.getElementById('readonly').hidden = !info.read_only;
  document.body.classList.toggle('read-only', info.read_only);
  document.querySelector('[data-nav="gpus"]').hidden = !can('gpu_list');
  const out = document.getElementById('logout');
  out.hidden = !tokenRequired;
  out.onclick = async () => { await logout().catch(() => {}); location.reload(); };
}

function showConnection(state) {
  const el = document.getElementById('conn');
  el.dataset.state = state;
  el.querySelector('span').textContent = {live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…'}[state] || state;
}

async function boot() {
  onUnauthenticated(() => { if (tokenRequired) checkAuth(); });
  let s;
  for (;;) {
    try { s = await session(); break; } catch (e) {
      showConnection('reconnecting');
      await new Promise(r => setTimeout(r, 1500));
    }
  }
  tokenRequired = s.token_required;
  if (!s.authenticated) await askToken();
  store.info = await call('system_info', {});
  showHeader();
  onConnection(async (state, reopened) => {
    showConnection(state);
    if (state === 'live' && reopened) {
      try { store.info = await call('system_info', {}); showHeader(); } catch (e) { /* next time */ }
    }
  });
  connect(checkAuth);
  window.addEventListener('hashchange', route);
  route();
  setInterval(() => tickElapsed(), 1000);
}

boot().catch(e => {
  fill(document.getElementById('main'), h('p', {class: 'error pad'}, `aima: ${e.message}`));
  toast(e.message, 'error');
});
