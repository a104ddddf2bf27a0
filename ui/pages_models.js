// pages_models.js — models, one model's versions and tags, one version's contents.
import {h, replace, bytes, num, pct, time, when, link, badge, table, card, stat, shortDigest} from './dom.js';
import * as api from './api.js';
import {stacked} from './charts.js';
import {act, confirmAction} from './ui.js';

const ACCURACY_VERSIONS = 10;
const ACCURACY_MAX_BYTES = 16 * 1024 * 1024;

function ratio(v) {
  return v && v.ratio ? v.ratio.toFixed(1) + '×' : '—';
}

function density(d) {
  return d ? (100 * d).toFixed(1) + ' %' : '—';
}

async function keyNames() {
  try {
    const k = await api.getJSON('/v1/keys');
    return new Map(k.keys.map((x) => [x.id, x.name]));
  } catch (e) {
    return new Map();
  }
}

function signer(names, id) {
  const n = names.get(id);
  return h('span', {title: 'key id ' + id}, n ? n + ' ' : '', h('code.muted', id));
}

// ---- #/models -------------------------------------------------------------------------------
export async function renderModels(main, page) {
  const [data, names] = await Promise.all([api.getJSON('/v1/models'), keyNames()]);
  if (page.stopped) return;
  const models = data.models;
  const versions = models.reduce((a, m) => a + m.versions, 0);
  const stored = models.reduce((a, m) => a + m.latest.size, 0);
  const f32 = models.reduce((a, m) => a + m.latest.f32_size, 0);
  const rows = models.map((m) => h('tr', {'data-test': 'model-row'},
    h('td', link(['models', m.name], h('strong', m.name))),
    h('td', link(['models', m.name, m.latest.version], m.latest.version)),
    h('td.num', num(m.versions)),
    h('td.num', num(m.latest.release)),
    h('td.num', bytes(m.latest.size)),
    h('td.num', {'data-test': 'model-ratio'}, ratio(m.latest)),
    h('td', m.latest.strategy || '—'),
    h('td.num', density(m.latest.density)),
    h('td', signer(names, m.latest.signer)),
    h('td', time(m.latest.pushed))));
  replace(main,
    h('div.page-head', h('h1', 'Models'), h('p.muted', 'Every model in the registry with its newest version.')),
    h('div.stats',
      stat('models', num(models.length), 'models-count'),
      stat('versions', num(versions), 'versions-count'),
      stat('latest packages', bytes(stored), null, bytes(f32) + ' as float32'),
      stat('smaller than float32', stored ? (f32 / stored).toFixed(1) + '×' : '—')),
    card(null, table(['Model', 'Latest', 'Versions', 'Release', 'Size', 'vs float32', 'Strategy',
      'Density', 'Signer', 'Pushed'], rows, {test: 'models-table', empty: 'No models yet: push one with pemn push.'})));
}

// ---- #/models/NAME --------------------------------------------------------------------------
export async function renderModel(main, page, name) {
  const [m, names] = await Promise.all([api.getJSON(api.path('models', name)), keyNames()]);
  if (page.stopped) return;
  const tagsOf = new Map();
  for (const [t, v] of Object.entries(m.tags || {})) {
    if (!tagsOf.has(v)) tagsOf.set(v, []);
    tagsOf.get(v).push(t);
  }
  const accCells = new Map();
  const rows = m.versions.map((v) => {
    const acc = h('td.num', {'data-test': 'accuracy'}, '…');
    accCells.set(v.version, acc);
    return h('tr', {'data-test': 'version-row'},
      h('td', link(['models', name, v.version], h('strong', v.version))),
      h('td.num', num(v.release)),
      h('td', (tagsOf.get(v.version) || []).map((t) => h('span.chip', t))),
      h('td.num', bytes(v.size)),
      h('td.num', bytes(v.f32_size)),
      h('td.num', ratio(v)),
      h('td', v.strategy || '—'),
      h('td.num', density(v.density)),
      acc,
      h('td', signer(names, v.signer)),
      h('td', time(v.pushed)));
  });
  const tagRows = Object.entries(m.tags || {}).sort().map(([t, v]) => h('tr', {'data-test': 'tag-row'},
    h('td', h('span.chip', t)), h('td', link(['models', name, v], v))));
  replace(main,
    h('nav.crumbs', link(['models'], 'Models'), ' › ', h('span', name)),
    h('div.page-head', h('h1', name),
      h('p.muted', `${m.versions.length} version(s); latest ${m.latest.version} (release ${m.latest.release}).`)),
    h('div.stats',
      stat('versions', num(m.versions.length)),
      stat('latest size', bytes(m.latest.size), null, bytes(m.latest.f32_size) + ' as float32'),
      stat('vs float32', ratio(m.latest), 'latest-ratio'),
      stat('strategy', m.latest.strategy || '—', null, 'density ' + density(m.latest.density))),
    card('Versions', table(['Version', 'Release', 'Tags', 'Size', 'float32', 'Ratio', 'Strategy',
      'Density', 'Accuracy', 'Signer', 'Pushed'], rows, {test: 'versions-table'})),
    card('Tags', table(['Tag', 'Version'], tagRows, {test: 'tags-table', empty: 'No tags.'}),
      tagForm(name, m, page)));
  // accuracy lives in each package's metadata, which pemnd reads from the whole package:
  // ask for the newest few small ones; the others show it on their own page
  m.versions.forEach((v, i) => {
    const cell = accCells.get(v.version);
    if (i >= ACCURACY_VERSIONS || v.size > ACCURACY_MAX_BYTES) {
      replace(cell, link(['models', name, v.version], 'see version'));
      return;
    }
    api.getJSON(api.path('models', name, 'versions', v.version, 'contents')).then((c) => {
      if (!page.stopped) replace(cell, c.accuracy === null ? '—' : pct(100 * c.accuracy, 2));
    }, () => { if (!page.stopped) replace(cell, '?'); });
  });
}

function tagForm(name, m, page) {
  const tag = h('input', {type: 'text', placeholder: 'tag, e.g. stable', 'data-test': 'tag-name',
    'aria-label': 'tag', value: Object.keys(m.tags || {})[0] || ''});
  const sel = h('select', {'data-test': 'tag-version', 'aria-label': 'version'},
    m.versions.map((v) => h('option', {value: v.version}, `${v.version} (release ${v.release})`)));
  const form = h('form.inline-form', {onsubmit: async (e) => {
    e.preventDefault();
    const t = tag.value.trim(), v = sel.value;
    if (!t) return;
    const was = (m.tags || {})[t];
    const ok = await confirmAction('Move tag', was
      ? `Move tag "${t}" of ${name} from ${was} to ${v}? Fleets following this tag start a new rollout.`
      : `Create tag "${t}" on ${name} ${v}?`, 'Move tag');
    if (!ok) return;
    const r = await act(`Tag ${t} → ${v}`, () => api.send('PUT', api.path('models', name, 'tags', t), {version: v}));
    if (r) page.reload();
  }},
  h('label', 'Move or create a tag '), tag, h('span', ' → '), sel,
  h('button.btn.btn-primary', {type: 'submit', 'data-test': 'tag-move', disabled: !api.token()}, 'Move tag'),
  api.token() ? null : h('span.muted', ' (enter a publish token to change tags)'));
  return form;
}

// ---- #/models/NAME/VERSION ------------------------------------------------------------------
export async function renderVersion(main, page, name, version) {
  const [c, names] = await Promise.all([
    api.getJSON(api.path('models', name, 'versions', version, 'contents')), keyNames()]);
  if (page.stopped) return;
  const kept = c.n_masked ? c.kept / c.n_masked : null;
  const protoRows = c.prototypes.map((p) => h('tr', {'data-test': 'proto-row'},
    h('td.num', p.index), h('td', h('span.chip', p.kind)), h('td.num', num(p.length)),
    h('td.num', bytes(p.bytes)),
    h('td', p.kind === 'seeded' ? [p.generator, ' scale ', String(parseFloat(Number(p.scale).toPrecision(6))), ' seed ', h('code', p.seed.slice(0, 16) + '…')] : 'float32 values')));
  const tensorRows = c.tensors.map((t) => h('tr', {'data-test': 'tensor-row'},
    h('td', h('code', t.name)), h('td', h('span.chip', t.kind)), h('td', t.dtype),
    h('td', '[' + t.shape.join(' × ') + ']'), h('td.num', num(t.numel)),
    h('td.num', t.kind === 'masked' ? density(t.numel ? t.kept / t.numel : 0) : '—'),
    h('td.num', t.kind === 'masked' ? '#' + t.prototype : '—'),
    h('td.num', bytes(t.bytes))));
  const metaRows = Object.entries(c.metadata).map(([k, v]) => h('tr', {'data-test': 'meta-row'},
    h('td', h('code', k)), h('td', h('pre.meta', v))));
  const fleetRows = c.fleets.map((f) => h('tr', {'data-test': 'version-fleet-row'},
    h('td', link(['fleets', f.fleet], f.fleet)), h('td', f.role), h('td', badge(f.state)),
    h('td.num', pct(f.percent, 0))));
  const kinds = [
    {label: 'masks (1 bit per weight)', key: 'masks', value: c.bytes.masks},
    {label: 'dense tensors', key: 'dense', value: c.bytes.dense},
    {label: 'prototype values', key: 'prototypes', value: c.bytes.prototypes},
    {label: 'manifest, names, metadata, signature', key: 'other', value: c.bytes.other},
  ];
  replace(main,
    h('nav.crumbs', link(['models'], 'Models'), ' › ', link(['models', name], name), ' › ', h('span', version)),
    h('div.page-head', h('h1', name, ' ', h('span.version', version)),
      h('p.muted', `Release ${c.release} · ${c.strategy || 'no strategy'} · created ${when(c.created)} · pushed ${when(c.pushed)}`)),
    h('div.stats',
      stat('package', bytes(c.size), 'size', num(c.size) + ' bytes'),
      stat('as float32', bytes(c.f32_size), null, num(c.n_params) + ' parameters'),
      stat('smaller than float32', ratio(c), 'ratio'),
      stat('weights kept', kept === null ? '—' : pct(100 * kept, 1), 'kept', num(c.n_masked) + ' masked'),
      stat('accuracy', c.accuracy === null ? '—' : pct(100 * c.accuracy, 2), 'accuracy',
        c.accuracy === null ? 'not recorded' : 'from package metadata')),
    card('Where the bytes go', stacked(kinds, {test: 'bytes-chart', format: bytes, title: 'bytes by kind'})),
    h('div.grid2',
      card('Prototypes', table(['#', 'Kind', 'Length', 'Bytes', 'Values'], protoRows, {test: 'protos-table'})),
      card('Signature and digest', h('dl.kv',
        h('dt', 'digest'), h('dd', h('code', {'data-test': 'digest'}, c.digest)),
        h('dt', 'content digest'), h('dd', h('code', c.signature.content_digest)),
        h('dt', 'signer'), h('dd', signer(names, c.signature.signer)),
        h('dt', 'public key'), h('dd', h('code', c.signature.public_key)),
        h('dt', 'signature'), h('dd', h('code.wrap', c.signature.signature)),
        h('dt', 'format'), h('dd', `pemn ${c.format_major}.${c.format_minor}`),
        h('dt', 'download'), h('dd', h('a', {href: c.package_url}, shortDigest(c.digest) + '… .pemn'))))),
    card(`Tensors (${num(c.n_tensors)})`, table(['Name', 'Kind', 'dtype', 'Shape', 'Elements', 'Kept', 'Prototype', 'Bytes'],
      tensorRows, {test: 'tensors-table'}),
    c.n_tensors > c.tensors.length ? h('p.muted', `First ${c.tensors.length} of ${c.n_tensors} shown.`) : null),
    card('Fleets running it', table(['Fleet', 'As', 'Rollout', 'Percent'], fleetRows,
      {test: 'version-fleets', empty: 'No fleet targets this version.'})),
    card('Metadata', table(['Key', 'Value'], metaRows, {test: 'meta-table', empty: 'No metadata.'})));
}
