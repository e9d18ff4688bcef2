// The engine's own live figures (service_metrics: read from the engine's
// metrics endpoint on request): requests running and waiting, KV cache
// use, tokens per second. The engine publishes no events for them, so the
// panel reads them again every few seconds, only while it is open, the
// service runs and the page is visible, one read at a time.

import {call} from './api.js';
import {h, fill, fmtTime} from './dom.js';

const every = 2000;

function num(v, digits = 0) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(digits);
}

export function figuresPanel(id) {
  const body = h('div', {class: 'figures', id: 'figures'}, h('p', {class: 'muted'}, 'Figures appear while the service runs.'));
  const when = h('span', {class: 'muted small'});
  const el = h('section', {class: 'panel'}, h('div', {class: 'panel-head'}, h('h2', {}, 'Engine'), when), body);
  let timer = null;
  let running = false;
  let closed = false;
  let busy = false;

  function show(f) {
    if (!f.scrape_ok) {
      fill(body, h('p', {class: 'muted'}, f.error || 'no figures'));
      when.textContent = '';
      return;
    }
    const kv = f.kv_cache_usage;
    fill(body,
      h('div', {class: 'fig'}, h('b', {}, num(f.requests_running)), h('span', {}, 'running')),
      h('div', {class: 'fig'}, h('b', {}, num(f.requests_waiting)), h('span', {}, 'waiting')),
      h('div', {class: 'fig'}, h('b', {}, kv === undefined ? '—' : `${(kv * 100).toFixed(1)}%`), h('span', {}, 'KV cache'),
        kv === undefined ? null : h('progress', {max: 1, value: kv})),
      h('div', {class: 'fig'}, h('b', {}, num(f.generation_tokens_per_second, 1)), h('span', {}, 'gen tokens/s')),
      h('div', {class: 'fig'}, h('b', {}, num(f.prompt_tokens_per_second, 1)), h('span', {}, 'prompt tokens/s')));
    when.textContent = f.scraped_at ? `at ${fmtTime(f.scraped_at)}` : '';
  }

  async function read() {
    timer = null;
    if (closed || !running || busy) return;
    if (document.hidden) { timer = setTimeout(read, every); return; }
    busy = true;
    try {
      show(await call('service_metrics', {service_id: id}));
    } catch (e) {
      fill(body, h('p', {class: 'muted'}, e.message));
    } finally {
      busy = false;
    }
    if (!closed && running) timer = setTimeout(read, every);
  }

  return {
    el,
    update(s) {
      const now = s.status === 'running' || s.status === 'unhealthy';
      if (now && !running) { running = true; if (!timer) read(); }
      if (!now && running) {
        running = false;
        clearTimeout(timer);
        timer = null;
        fill(body, h('p', {class: 'muted'}, `Figures appear while the service runs (now ${s.status}).`));
        when.textContent = '';
      }
    },
    close() { closed = true; clearTimeout(timer); },
  };
}
