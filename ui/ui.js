// ui.js — what every page shares: the banner, confirmations, the answer to a write, and
// what a page shows when it cannot load.
import {h, replace} from './dom.js';
import * as api from './api.js';

const banner = document.getElementById('banner');
const modal = document.getElementById('modal');

export function notify(text, kind = 'info') {
  replace(banner, h('span', {'data-test': 'banner-text'}, text),
    h('button.link', {type: 'button', 'aria-label': 'dismiss', onclick: () => { banner.hidden = true; }}, '×'));
  banner.className = 'banner banner-' + kind;
  banner.hidden = false;
}

export function clearNotice() {
  banner.hidden = true;
}

// A confirmation dialog; resolves true when confirmed.
export function confirmAction(title, text, okLabel, danger) {
  return new Promise((resolve) => {
    const done = (v) => { modal.hidden = true; replace(modal); document.removeEventListener('keydown', onKey); resolve(v); };
    const onKey = (e) => { if (e.key === 'Escape') done(false); };
    document.addEventListener('keydown', onKey);
    const ok = h('button.btn' + (danger ? '.btn-danger' : '.btn-primary'),
      {type: 'button', 'data-test': 'confirm-ok', onclick: () => done(true)}, okLabel || 'Confirm');
    replace(modal, h('div.modal-box', {role: 'dialog', 'aria-label': title},
      h('h3', title), h('p', text),
      h('div.modal-actions',
        h('button.btn', {type: 'button', 'data-test': 'confirm-cancel', onclick: () => done(false)}, 'Cancel'),
        ok)));
    modal.hidden = false;
    ok.focus();
  });
}

// Runs a write the user confirmed; shows the server's answer either way.
export async function act(what, fn) {
  try {
    const r = await fn();
    notify(what + ': done', 'ok');
    return r;
  } catch (e) {
    notify(what + ' refused — ' + (e instanceof api.ApiError ? e.describe() : String(e)), 'error');
    return null;
  }
}

// What a page shows when it cannot load.
export function failed(e) {
  if (e instanceof api.ApiError && e.status === 401) {
    return h('section.card.needs-token', {'data-test': 'needs-token'},
      h('h2', 'A token is needed'),
      h('p', api.token()
        ? 'The registry refused the token: ' + e.message + '. Enter another one at the top right.'
        : 'This registry requires a token to read (' + e.message + '). Enter one at the top right; it is kept in this browser tab only.'));
  }
  if (e instanceof api.ApiError && e.status === 403) {
    return h('section.card.needs-token', {'data-test': 'forbidden'},
      h('h2', 'Not allowed with this token'), h('p', e.describe()));
  }
  return h('section.card.error', {'data-test': 'load-error'}, h('h2', 'Could not load this page'),
    h('p', e instanceof api.ApiError ? e.describe() : String(e)));
}

