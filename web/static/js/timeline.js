// A start as a timeline: one row per phase of the service's latest run,
// with when it began and how long it took (until the next phase or the
// final status), pull bytes with a bar, the engine's milestones, and the
// outcome. The phases and their order come from the daemon (system_info);
// a phase the daemon reports that the list lacks still shows, in the order
// it happened.

import {h, fmtDuration, fmtBytes, fmtTime, elapsed, between} from './dom.js';

// runEvents picks the events of one run from a service's history.
export function runEvents(history, run) {
  return history.filter(e => e.run === run);
}

// build turns one run's events into phase rows and an outcome.
export function build(evs, phases) {
  const rows = [];
  let outcome = null;
  for (const ev of evs) {
    const last = rows[rows.length - 1];
    switch (ev.type) {
      case 'phase':
        if (last && !last.end) last.end = ev.time;
        rows.push({phase: ev.phase, start: ev.time, end: null, messages: ev.message ? [ev.message] : [], pull: {}});
        break;
      case 'message':
        if (last && (!ev.phase || ev.phase === last.phase)) last.messages.push(ev.message);
        break;
      case 'progress':
        if (last && ev.layer && ev.total > 0) last.pull[ev.layer] = {current: ev.current || 0, total: ev.total};
        break;
      case 'status': // the first status after the phases ends the start
        if (ev.status === 'creating' || outcome) break;
        if (last && !last.end) last.end = ev.time;
        outcome = ev;
        break;
    }
  }
  const seen = new Set(rows.map(r => r.phase));
  const pending = phases.filter(p => !seen.has(p) && phases.indexOf(p) > Math.max(-1, ...rows.map(r => phases.indexOf(r.phase))));
  return {rows, outcome, pending};
}

function pullOf(row) {
  let current = 0, total = 0;
  for (const p of Object.values(row.pull)) {
    if (p.total > 0) { current += Math.min(p.current, p.total); total += p.total; }
  }
  return total ? {current, total} : null;
}

// renderTimeline draws the timeline of service s from its history; pulled
// is the pull's byte counts per layer seen live for run s.run, if any (the
// history does not keep them).
export function renderTimeline(s, history, phases, pulled) {
  if (!s.run) return h('p', {class: 'muted'}, 'Not started yet.');
  const {rows, outcome, pending} = build(runEvents(history, s.run), phases);
  for (const r of rows) {
    if (r.phase === 'pull' && pulled && !Object.keys(r.pull).length) r.pull = pulled;
  }
  if (!rows.length) return h('p', {class: 'muted'}, `Run ${s.run}: no phases recorded.`);
  const failedHere = outcome && outcome.status === 'failed';
  const ol = h('ol', {class: 'timeline', id: 'timeline'});
  rows.forEach((r, i) => {
    const isLast = i === rows.length - 1;
    let state = 'done';
    if (isLast && !r.end && s.status === 'creating') state = 'current';
    else if (isLast && failedHere) state = 'failed';
    else if (isLast && !r.end) state = 'cut';
    const dur = r.end ? fmtDuration(between(r.start, r.end)) : null;
    const pb = pullOf(r);
    ol.appendChild(h('li', {class: `step ${state}`, 'data-phase': r.phase, 'data-state': state},
      h('div', {class: 'step-head'},
        h('span', {class: 'dot', 'aria-hidden': 'true'}),
        h('span', {class: 'step-name'}, r.phase),
        h('span', {class: 'step-time muted'}, fmtTime(r.start)),
        h('span', {class: 'step-dur'}, state === 'current' ? elapsed(r.start) : dur)),
      pb ? h('div', {class: 'pull'}, h('progress', {max: pb.total, value: pb.current}),
        h('span', {class: 'bytes'}, `${fmtBytes(pb.current)} / ${fmtBytes(pb.total)}`)) : null,
      r.messages.length ? h('ul', {class: 'messages'}, r.messages.slice(-12).map(m => h('li', {}, m))) : null));
  });
  for (const p of pending) {
    const state = s.status === 'creating' ? 'pending' : 'skipped';
    ol.appendChild(h('li', {class: `step ${state}`, 'data-phase': p, 'data-state': state},
      h('div', {class: 'step-head'}, h('span', {class: 'dot', 'aria-hidden': 'true'}), h('span', {class: 'step-name'}, p),
        h('span', {class: 'step-time muted'}, state === 'pending' ? 'waiting' : 'not reached'))));
  }
  if (outcome) {
    const total = between(rows[0].start, outcome.time);
    const text = outcome.status === 'running' ? `ready in ${fmtDuration(total)}` : `${outcome.status} after ${fmtDuration(total)}`;
    ol.appendChild(h('li', {class: `step outcome ${outcome.status}`, 'data-phase': '', 'data-state': outcome.status},
      h('div', {class: 'step-head'}, h('span', {class: 'dot', 'aria-hidden': 'true'}), h('span', {class: 'step-name'}, outcome.status),
        h('span', {class: 'step-time muted'}, fmtTime(outcome.time)), h('span', {class: 'step-dur'}, text))));
  }
  return ol;
}
