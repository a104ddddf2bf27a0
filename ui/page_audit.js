// page_audit.js — the audit log, filtered by action, actor, target and free text, paged
// backwards. It needs a publish or admin token (the log names tokens and who did what).
import {h, replace, when, table, card, link} from './dom.js';
import * as api from './api.js';
import {failed} from './ui.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

// Targets that name something the console shows become links.
function targetLink(a) {
  const t = a.target, parts = t.split('/');
  if (a.action.startsWith('fleet.') && NAME.test(t)) return link(['fleets', t], t);
  if (a.action === 'push' && parts.length === 2 && parts.every((p) => NAME.test(p))) {
    return link(['models', parts[0], parts[1]], t);
  }
  if (a.action.startsWith('tag.') && NAME.test(t.split(':')[0])) return link(['models', t.split(':')[0]], t);
  return t;
}

export async function renderAudit(main, page) {
  const field = (name, ph) => h('input', {type: 'text', name, placeholder: ph, 'aria-label': name,
    'data-test': 'audit-' + name});
  const f = {action: field('action', 'action, e.g. fleet or tag.set'), actor: field('actor', 'actor (token name)'),
    target: field('target', 'target, e.g. edge or net/*'), q: field('q', 'text anywhere')};
  const out = h('div');
  const more = h('button.btn', {type: 'button', 'data-test': 'audit-more', hidden: true}, 'Older entries');
  let before = 0;
  let body = null;

  async function load(append) {
    const q = new URLSearchParams();
    for (const [k, input] of Object.entries(f)) if (input.value.trim()) q.set(k, input.value.trim());
    q.set('limit', '100');
    if (append && before) q.set('before', String(before));
    let data;
    try {
      data = await api.getJSON('/v1/audit?' + q.toString());
    } catch (e) {
      replace(out, failed(e));
      more.hidden = true;
      return;
    }
    if (page.stopped) return;
    const rows = data.entries.map((a) => h('tr', {'data-test': 'audit-row'},
      h('td.nowrap', when(a.at)), h('td', h('code', a.action)), h('td', a.actor),
      h('td', targetLink(a)), h('td.msg', a.detail)));
    if (!append || !body) {
      const t = table(['When', 'Action', 'Actor', 'Target', 'Detail'], rows,
        {test: 'audit-table', empty: 'No entries match.'});
      body = t.querySelector('tbody');
      replace(out, t);
    } else {
      rows.forEach((r) => body.append(r));
    }
    before = data.next_before || 0;
    more.hidden = !data.next_before;
  }
  more.addEventListener('click', () => load(true));
  const form = h('form.filters', {onsubmit: (e) => { e.preventDefault(); before = 0; load(false); }},
    f.action, f.actor, f.target, f.q, h('button.btn.btn-primary', {type: 'submit', 'data-test': 'audit-filter'}, 'Filter'));
  replace(main,
    h('div.page-head', h('h1', 'Audit log'),
      h('p.muted', 'Every write to the registry: pushes, tags, keys, tokens, fleets and rollouts. Needs a publish or admin token.')),
    card(null, form, out, more));
  await load(false);
}
