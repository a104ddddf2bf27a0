// app.js — the console's shell: routing (#/...), the token box, the banner, confirmations,
// and the lifetime of a page (a page's timers stop when another page is shown).
import {h, replace} from './dom.js';
import * as api from './api.js';
import {renderModels, renderModel, renderVersion} from './pages_models.js';
import {renderFleets, renderFleet, renderDevice} from './pages_fleets.js';
import {renderAudit} from './page_audit.js';
import {clearNotice, failed} from './ui.js';

const main = document.getElementById('main');
const authBox = document.getElementById('auth');
let current = null; // {stopped, stops: []}

function renderAuth() {
  if (api.token()) {
    replace(authBox, h('span.token-on', {'data-test': 'token-on'}, 'token set (this tab)'),
      h('button.btn.btn-small', {type: 'button', 'data-test': 'token-forget',
        onclick: () => { api.setToken(''); renderAuth(); route(); }}, 'Forget'));
    return;
  }
  const input = h('input', {type: 'password', placeholder: 'API token', autocomplete: 'off',
    'aria-label': 'API token', 'data-test': 'token-input'});
  const form = h('form.token-form', {onsubmit: (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    api.setToken(t);
    renderAuth();
    route();
  }}, input, h('button.btn.btn-small', {type: 'submit', 'data-test': 'token-use'}, 'Use token'));
  replace(authBox, form);
}

// ---- routing ------------------------------------------------------------------------------
function parts() {
  return location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch (e) { return p; }
  });
}

export function route() {
  if (current) {
    current.stopped = true;
    current.stops.forEach((f) => f());
  }
  const page = {stopped: false, stops: [], onStop(f) { this.stops.push(f); }, reload: () => route()};
  current = page;
  const p = parts();
  const section = p[0] || 'models';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.section === section);
  }
  replace(main, h('p.muted', 'Loading…'));
  let run;
  if (section === 'models' && p.length === 1) run = renderModels(main, page);
  else if (section === 'models' && p.length === 2) run = renderModel(main, page, p[1]);
  else if (section === 'models' && p.length === 3) run = renderVersion(main, page, p[1], p[2]);
  else if (section === 'fleets' && p.length === 1) run = renderFleets(main, page);
  else if (section === 'fleets' && p.length === 2) run = renderFleet(main, page, p[1]);
  else if (section === 'fleets' && p.length === 4 && p[2] === 'devices') run = renderDevice(main, page, p[1], p[3]);
  else if (section === 'audit') run = renderAudit(main, page);
  else if (p.length === 0) run = renderModels(main, page);
  else run = Promise.resolve(replace(main, h('section.card', h('h2', 'No such page'), h('p', 'Try Models or Fleets.'))));
  Promise.resolve(run).catch((e) => {
    if (!page.stopped) replace(main, failed(e));
  });
}

window.addEventListener('hashchange', () => { clearNotice(); route(); });
renderAuth();
if (!location.hash) history.replaceState(null, '', '#/models');
route();
