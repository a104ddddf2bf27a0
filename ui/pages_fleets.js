// pages_fleets.js — fleets, one fleet's rollout (live: polled with If-None-Match, updated in
// place), one device's reports.
import {h, replace, num, pct, time, when, link, badge, table, card, stat, shortDigest} from './dom.js';
import * as api from './api.js';
import {hbars, timeline, meter} from './charts.js';
import {act, confirmAction, failed} from './ui.js';

const POLL_MS = 2000;

function targetText(t) {
  if (!t) return h('span.muted', 'none');
  return h('span', link(['models', t.model, t.version], `${t.model} ${t.version}`),
    h('span.muted', ` release ${t.release}`), t.tag ? [' ', h('span.chip', {title: 'follows tag'}, 'tag ' + t.tag)] : null);
}

function abortText(a) {
  return a ? `abort when ≥ ${a.failure_percent} % of at least ${num(a.min_devices)} reporting devices fail`
    : 'no abort rule';
}

// ---- #/fleets -------------------------------------------------------------------------------
export async function renderFleets(main, page) {
  const data = await api.getJSON('/v1/fleets');
  if (page.stopped) return;
  const rows = data.fleets.map((f) => {
    const cells = {previous: h('td', '…'), installed: h('td.num', '…'), failed: h('td.num', '…'),
      devices: h('td.num', {'data-test': 'fleet-devices'}, '…')};
    api.getJSON(api.path('fleets', f.fleet)).then((x) => {
      replace(cells.previous, targetText(x.previous));
      replace(cells.installed, num(x.rollout.installed));
      replace(cells.failed, x.rollout.failed ? h('span.bad', num(x.rollout.failed)) : '0');
      replace(cells.devices, num(x.devices.total));
    }, () => Object.values(cells).forEach((c) => replace(c, '?')));
    return h('tr', {'data-test': 'fleet-row'},
      h('td', link(['fleets', f.fleet], h('strong', f.fleet))),
      h('td', targetText(f.target)), cells.previous,
      h('td', badge(f.state)),
      h('td', h('div.meter-cell', meter(f.percent, 100, 'meter-' + f.state), h('span', pct(f.percent, 0)))),
      cells.installed, cells.failed, cells.devices);
  });
  replace(main,
    h('div.page-head', h('h1', 'Fleets'), h('p.muted', 'Groups of devices and the model each should run.')),
    card(null, table(['Fleet', 'Target', 'Previous', 'Rollout', 'Percent', 'Installed', 'Failed', 'Devices'], rows,
      {test: 'fleets-table', empty: 'No fleets yet.'})));
}

// ---- #/fleets/NAME --------------------------------------------------------------------------
export async function renderFleet(main, page, name) {
  const base = api.path('fleets', name);
  let filter = '';
  let limit = 25;
  let fleet = null;
  // the parts that are updated in place
  const el = {
    head: h('div.page-head'), rollout: h('div'), stats: h('div.stats'), byState: h('div'),
    byVersion: h('div'), failures: h('div'), progress: h('div'), reports: h('div'),
    live: h('span.live', {'data-test': 'live'}, 'loading…'),
  };
  const pctInput = h('input', {type: 'number', min: 0, max: 100, step: 0.01, 'aria-label': 'percentage',
    'data-test': 'percent-input'});
  const btn = (label, test, onclick, cls) => h('button.btn' + (cls || ''), {type: 'button', 'data-test': test, onclick}, label);
  const actions = {
    pause: btn('Pause', 'action-pause', () => rolloutAction('pause')),
    resume: btn('Resume', 'action-resume', () => rolloutAction('resume')),
    abort: btn('Abort', 'action-abort', () => rolloutAction('abort'), '.btn-danger'),
    percent: btn('Set percentage', 'action-percent', () => setPercent(), '.btn-primary'),
  };
  const actionBar = h('div.actions', actions.pause, actions.resume, actions.abort,
    h('span.sep'), pctInput, h('span', '%'), actions.percent,
    api.token() ? null : h('span.muted', ' Enter a publish token (top right) to change the rollout.'));
  const stateSel = h('select', {'aria-label': 'filter by state', 'data-test': 'reports-filter',
    onchange: () => { filter = stateSel.value; limit = 25; refresh(true); }},
  ['', 'failed', 'installed', 'downloading', 'verifying', 'registered'].map((x) =>
    h('option', {value: x}, x || 'all states')));

  async function rolloutAction(what) {
    const verbs = {pause: 'Pause', resume: 'Resume', abort: 'Abort'};
    const ok = await confirmAction(`${verbs[what]} the rollout`,
      what === 'abort'
        ? `Abort the rollout of ${fleet.target.model} ${fleet.target.version} in fleet ${name}? Devices that have not installed it go back to the previous target. This cannot be resumed.`
        : `${verbs[what]} the rollout of ${fleet.target.model} ${fleet.target.version} in fleet ${name}?`,
      verbs[what], what === 'abort');
    if (!ok) return;
    await act(`${verbs[what]} rollout`, () => api.send('POST', base + '/rollout/' + what,
      {reason: 'from the web console'}));
    refresh(true);
  }

  async function setPercent() {
    const v = Number(pctInput.value);
    if (pctInput.value === '' || !(v >= 0 && v <= 100)) {
      await act('Set percentage', () => Promise.reject(new Error('enter a percentage from 0 to 100')));
      return;
    }
    const ok = await confirmAction('Change the rollout percentage',
      `Set the rollout of ${fleet.target.model} ${fleet.target.version} in fleet ${name} from ${fleet.rollout.percent} % to ${v} %?` +
      (v > fleet.rollout.percent ? ' More devices will install it.' : ' Devices that already installed it keep it.'), 'Set ' + v + ' %');
    if (!ok) return;
    const body = {model: fleet.target.model, rollout: {percent: v}};
    if (fleet.target.tag) body.tag = fleet.target.tag; else body.version = fleet.target.version;
    if (fleet.rollout.abort) body.rollout.abort = fleet.rollout.abort;
    await act('Set percentage', () => api.send('PUT', base, body));
    refresh(true);
  }

  function drawFleet(f) {
    fleet = f;
    const r = f.rollout, d = f.devices;
    replace(el.head, h('h1', f.fleet),
      h('p.muted', 'Target ', targetText(f.target), ' · previous ', targetText(f.previous)));
    replace(el.rollout,
      h('div.rollout-line',
        h('span', {'data-test': 'rollout-state'}, badge(r.state)),
        h('span.big', {'data-test': 'rollout-percent'}, pct(r.percent, r.percent % 1 ? 2 : 0)),
        h('div.grow', meter(r.percent, 100, 'meter-' + r.state))),
      h('dl.kv',
        h('dt', 'target'), h('dd', targetText(f.target), ' ', h('code.muted', shortDigest(f.target.digest))),
        h('dt', 'previous'), h('dd', targetText(f.previous)),
        h('dt', 'state reason'), h('dd', {'data-test': 'rollout-reason'}, r.reason || '—'),
        h('dt', 'abort rule'), h('dd', {'data-test': 'abort-rule'}, abortText(r.abort)),
        h('dt', 'started'), h('dd', when(r.started), ' (', time(r.started), ')'),
        h('dt', 'rollout id'), h('dd', h('code', r.id))),
      actionBar);
    if (document.activeElement !== pctInput) pctInput.value = String(r.percent);
    const can = !!api.token();
    actions.pause.disabled = !can || r.state !== 'active';
    actions.resume.disabled = !can || r.state !== 'paused';
    actions.abort.disabled = !can || r.state === 'aborted';
    actions.percent.disabled = !can;
    pctInput.disabled = !can;
    replace(el.stats,
      stat('devices', num(d.total), 'devices-total'),
      stat('reporting on target', num(r.reporting), 'rollout-reporting'),
      stat('installed', num(r.installed), 'rollout-installed'),
      stat('in progress', num(r.in_progress), 'rollout-in-progress'),
      stat('failed', num(r.failed), 'rollout-failed',
        r.reporting ? pct(100 * r.failed / r.reporting, 1) + ' of reporting' : null));
    const order = ['installed', 'downloading', 'verifying', 'failed', 'registered'];
    const states = Object.entries(d.by_state).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
      .map(([k, v]) => ({label: k, key: k, value: v}));
    replace(el.byState, hbars(states, {test: 'chart-state', title: 'devices by state'}));
    const versions = Object.entries(d.by_version).sort((a, b) => b[1] - a[1])
      .map(([k, v], i) => ({label: k === 'none' ? 'nothing yet' : k, key: 'v' + i, value: v}));
    replace(el.byVersion, hbars(versions, {test: 'chart-version', title: 'devices by running version'}));
  }

  function drawFailures(x) {
    const rows = x.failures.map((f) => h('tr', {'data-test': 'failure-row'},
      h('td', h('code', f.reason)), h('td.num', num(f.devices)), h('td.num', num(f.counted))));
    replace(el.failures, table(['Reason', 'Devices', 'In this rollout'], rows,
      {test: 'failures-table', empty: 'No failures.'}));
  }

  function drawProgress(x) {
    const samples = x.samples.slice();
    if (fleet && fleet.rollout.id === x.rollout_id) { // the counts right now, as the last point
      samples.push({at: Math.floor(Date.now() / 1000), state: fleet.rollout.state, reporting: fleet.rollout.reporting,
        installed: fleet.rollout.installed, failed: fleet.rollout.failed, in_progress: fleet.rollout.in_progress});
    }
    replace(el.progress, timeline(samples, [
      {key: 'installed', label: 'installed'}, {key: 'in_progress', label: 'in progress'},
      {key: 'failed', label: 'failed'}, {key: 'reporting', label: 'reporting'}],
    {test: 'progress-chart', title: 'rollout progress'}),
    h('p.muted', `${x.samples.length} stored sample(s) of this rollout (at most ${x.max_samples}, thinned as it runs) plus the live counts; shaded: paused or aborted.`));
  }

  function drawReports(x) {
    const rows = x.devices.map((d) => h('tr', {'data-test': 'report-row'},
      h('td', link(['fleets', name, 'devices', d.device], d.device)),
      h('td', badge(d.state || 'registered')),
      h('td', d.reason ? h('code', d.reason) : ''),
      h('td.msg', {'data-test': 'report-message'}, d.message),
      h('td', d.version || '—'),
      h('td', d.in_rollout ? 'yes' : 'no'),
      h('td', d.reported ? time(d.reported) : time(d.last_seen))));
    const more = x.devices.length < x.total && limit < 1000
      ? h('button.btn.btn-small', {type: 'button', 'data-test': 'reports-more',
        onclick: () => { limit = Math.min(1000, limit + 100); refresh(true); }}, 'Show more')
      : null;
    replace(el.reports, table(['Device', 'State', 'Reason', 'Message', 'Running', 'In rollout', 'Reported'], rows,
      {test: 'reports-table', empty: 'No devices match.'}),
    h('p.muted', `${num(x.devices.length)} of ${num(x.total)} device(s) shown, most recent report first. `, more));
  }

  let timer = null, busy = false;
  async function refresh(now) {
    if (busy || page.stopped) return;
    busy = true;
    clearTimeout(timer);
    try {
      const q = '?limit=' + limit + (filter ? '&state=' + encodeURIComponent(filter) : '');
      const [f, fl, pr, rp] = await Promise.all([api.get(base), api.get(base + '/failures'),
        api.get(base + '/progress'), api.get(base + '/devices' + q)]);
      if (page.stopped) return;
      if (f.changed || now) drawFleet(f.data);
      if (fl.changed || now) drawFailures(fl.data);
      if (pr.changed || f.changed || now) drawProgress(pr.data);
      if (rp.changed || now) drawReports(rp.data);
      replace(el.live, '● live · updated ', new Date().toLocaleTimeString('en-GB'));
      el.live.classList.remove('stale');
    } catch (e) {
      if (!fleet) throw e;
      replace(el.live, '○ not updating: ', e instanceof api.ApiError ? e.describe() : String(e));
      el.live.classList.add('stale');
    } finally {
      busy = false;
      if (!page.stopped) timer = setTimeout(() => refresh(false), POLL_MS);
    }
  }
  page.onStop(() => clearTimeout(timer));

  await refresh(true);
  if (page.stopped) return;
  replace(main,
    h('nav.crumbs', link(['fleets'], 'Fleets'), ' › ', h('span', name), h('span.grow'), el.live),
    el.head,
    card('Rollout', el.rollout),
    el.stats,
    h('div.grid2', card('Devices by state', el.byState), card('Devices by running version', el.byVersion)),
    h('div.grid2', card('Rollout progress over time', el.progress), card('Failures by reason', el.failures)),
    card(h('span', 'Latest reports ', stateSel), el.reports));
  // for bench/bench_ui.sh: when the first data was on the page
  if (window.performance && performance.mark) performance.mark('pemn-fleet-ready');
}

// ---- #/fleets/NAME/devices/ID ---------------------------------------------------------------
export async function renderDevice(main, page, fleet, device) {
  const base = api.path('fleets', fleet, 'devices', device);
  const crumbs = () => h('nav.crumbs', link(['fleets'], 'Fleets'), ' › ', link(['fleets', fleet], fleet), ' › ',
    h('span', device), h('span.grow'), live);
  const live = h('span.live', {'data-test': 'live'}, '');
  let timer = null;
  page.onStop(() => clearTimeout(timer));

  function draw(d, hist) {
    const rows = hist.reports.map((x) => h('tr', {'data-test': 'history-row'},
      h('td', when(x.at)), h('td', badge(x.state)), h('td', x.reason ? h('code', x.reason) : ''),
      h('td', x.version || '—', x.release ? h('span.muted', ` r${x.release}`) : ''),
      h('td', h('code.muted', shortDigest(x.digest))),
      h('td', x.rollout_id ? 'yes' : 'no'),
      h('td', x.fleet),
      h('td.msg', {'data-test': 'history-message'}, x.message)));
    replace(main, crumbs(),
      h('div.page-head', h('h1', device), h('p.muted', `Device in fleet ${fleet}; first seen ${when(d.first_seen)}.`)),
      h('div.stats',
        stat('state', badge(d.state || 'registered'), 'device-state', d.reason || null),
        stat('running', d.version || '—', 'device-version', d.release ? 'release ' + d.release : null),
        stat('should run', d.desired_version || '—', null, d.in_rollout ? 'in the rollout' : 'outside the rollout'),
        stat('bucket', num(d.bucket), null, 'of 10,000'),
        stat('last seen', time(d.last_seen), null, d.reported ? 'reported ' + when(d.reported) : 'never reported')),
      d.message ? card('Latest message', h('pre.meta', {'data-test': 'device-message'}, d.message)) : null,
      card(`Report history (newest first; the last ${hist.kept} are kept)`,
        table(['Received', 'State', 'Reason', 'Running', 'About', 'Counted', 'Fleet', 'Message'], rows,
          {test: 'history-table', empty: 'No reports yet.'})));
  }

  // live like the fleet page, less often: a device reports rarely
  async function refresh(first) {
    try {
      const [d, hist] = await Promise.all([api.get(base), api.get(base + '/reports')]);
      if (page.stopped) return;
      if (first || d.changed || hist.changed) draw(d.data, hist.data);
      replace(live, '● live · updated ', new Date().toLocaleTimeString('en-GB'));
      live.classList.remove('stale');
    } catch (e) {
      if (first) {
        replace(main, crumbs(), failed(e));
        return;
      }
      replace(live, '○ not updating: ', e instanceof api.ApiError ? e.describe() : String(e));
      live.classList.add('stale');
    }
    if (!page.stopped) timer = setTimeout(() => refresh(false), 2 * POLL_MS);
  }
  await refresh(true);
}
