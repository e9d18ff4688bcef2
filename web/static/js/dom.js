// Small DOM and formatting helpers shared by every view. Text always goes
// in as text nodes (never HTML), so nothing a record or a log line holds
// can become markup.

// h builds an element: h('td', {class: 'x', 'data-id': id, onclick: f}, child, ...).
// Children may be strings, numbers, nodes, arrays, or null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear empties an element and returns it.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// fill replaces an element's children (as h takes them: null is skipped).
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// fmtDuration renders milliseconds as "850 ms", "12.3 s", "4 m 05 s", "2 h 03 m".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

// fmtBytes renders a byte count in decimal units, as Docker does.
export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

// fmtTime renders an RFC 3339 time as local wall-clock time.
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], {hour12: false});
}

export function fmtDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString([], {hour12: false});
}

export function since(iso) {
  return iso ? Date.now() - new Date(iso).getTime() : null;
}

export function between(from, to) {
  if (!from || !to) return null;
  return new Date(to).getTime() - new Date(from).getTime();
}

// elapsed is a span whose text the page's one-second clock keeps current.
export function elapsed(fromISO) {
  const el = h('span', {class: 'elapsed', 'data-since': fromISO}, fmtDuration(since(fromISO)));
  return el;
}

export function tickElapsed(root = document) {
  for (const el of root.querySelectorAll('[data-since]')) {
    el.textContent = fmtDuration(since(el.dataset.since));
  }
}

// chip is a status chip; CSS colours it by data-status, and any status the
// daemon adds later still shows (in the neutral colour).
export function chip(status, extra) {
  return h('span', {class: 'chip', 'data-status': status || 'unknown', title: extra || null}, status || 'unknown');
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const el = h('div', {class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status'}, message);
  box.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 4000);
}

// confirmDialog asks in the page's own dialog (not window.confirm, which
// blocks the page and its live updates). One question is open at a time: a
// new one answers the previous one "no". The dialog's close event comes
// late (a task after the click), so one that arrives while the dialog is
// open again belongs to an earlier question and is ignored.
let pendingAnswer = null;

function ask(text, okLabel, field) {
  const dlg = document.getElementById('confirm-dialog');
  const box = document.getElementById('confirm-field');
  const input = document.getElementById('confirm-input');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  box.hidden = !field;
  input.value = '';
  if (field) {
    document.getElementById('confirm-label').textContent = field.label;
    input.placeholder = field.placeholder || '';
  }
  if (!dlg.dataset.wired) {
    dlg.dataset.wired = 'yes';
    dlg.addEventListener('close', () => {
      if (dlg.open || !pendingAnswer) return;
      const answer = pendingAnswer;
      pendingAnswer = null;
      answer({ok: dlg.returnValue === 'ok', value: input.value.trim()});
    });
    // Enter in the field answers OK (the form's default button, the
    // first, is Cancel).
    input.addEventListener('keydown', ev => {
      if (ev.key !== 'Enter') return;
      ev.preventDefault();
      dlg.close('ok');
    });
  }
  if (pendingAnswer) pendingAnswer({ok: false, value: ''});
  return new Promise(resolve => {
    pendingAnswer = resolve;
    dlg.returnValue = '';
    if (!dlg.open) dlg.showModal();
    if (field) input.focus();
  });
}

export function confirmDialog(text, okLabel = 'Delete') {
  return ask(text, okLabel, null).then(a => a.ok);
}

// askDialog is confirmDialog with one line of text to type (not
// window.prompt, which blocks the page as window.confirm does): field is
// {label, placeholder}; the answer is the text, trimmed, or null when
// cancelled.
export function askDialog(text, okLabel, field) {
  return ask(text, okLabel, field).then(a => (a.ok ? a.value : null));
}

// kv renders label/value pairs as a definition list, skipping empty values.
export function kv(pairs) {
  const dl = h('dl', {class: 'kv'});
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    dl.append(h('dt', {}, k), h('dd', {}, v));
  }
  return dl;
}

// download saves text as a file.
export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], {type: 'text/plain'}));
  const a = h('a', {href: url, download: name, hidden: true});
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
