// OpenBridge dashboard: plain JS, no framework, no build. Everything it shows comes from the
// admin API of the listener that served it; every text from the API is set with textContent
// (never innerHTML), so a name like <img src=x onerror=alert(1)> stays text.
//
// Data: /admin/v1/timeseries (charts, every second, only the new points), /admin/v1/targets
// (every second), /admin/v1/events?tail=20 read with fetch() and a stream reader (EventSource
// cannot send a header) for the request tail, health and reload records, /admin/v1/reloads and
// /admin/v1/config on load and after each reload, /admin/v1/keys when the gateway has it.
'use strict';

(() => {
  const TOKEN_KEY = 'openbridge-admin-token';
  const WINDOW_S = 900; // the charts' span: the gateway keeps 15 minutes
  const TAIL_KEPT = 500; // access records kept for the tail
  const TAIL_SHOWN = 100;
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers: text only ----------------------------------------------------------------
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = String(v);
        else e.setAttribute(k, String(v));
      }
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c); // strings: Text nodes
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function td(label, content, cls) {
    const c = el('td', { 'data-label': label, class: cls });
    if (content instanceof Node) c.append(content);
    else c.textContent = content === undefined || content === null ? '' : String(content);
    return c;
  }

  // ---- formatting ----------------------------------------------------------------------------
  function num(v, digits = 1) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(digits);
  }
  const pct = (r) => (r === null || r === undefined || !Number.isFinite(r) ? '–' : (r * 100).toFixed(r > 0 && r < 0.01 ? 2 : 1) + ' %');
  const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v < 1 ? v.toFixed(2) + ' ms' : num(v) + ' ms');
  function clock(d) {
    const p = (n) => String(n).padStart(2, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function timeOf(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso || '') : clock(d);
  }

  // ---- API -----------------------------------------------------------------------------------
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let running = false;
  let generation = 0; // bumps on sign-out: loops of an older session stop

  function headers() {
    return token ? { Authorization: `Bearer ${token}` } : {};
  }
  class Unauthorized extends Error {}
  async function api(path, opts = {}) {
    const r = await fetch(path, { headers: headers(), cache: 'no-store', credentials: 'omit', ...opts });
    if (r.status === 401) {
      signOut('The admin token was refused.');
      throw new Unauthorized();
    }
    return r;
  }
  async function apiJson(path) {
    const r = await api(path);
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  // ---- session -------------------------------------------------------------------------------
  async function boot() {
    $('login-form').addEventListener('submit', onLogin);
    $('signout').addEventListener('click', () => signOut(''));
    $('detail-close').addEventListener('click', () => showDetail(null));
    for (const id of ['f-group', 'f-target', 'f-key', 'f-status']) $(id).addEventListener('change', renderTail);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && running) pollSoon();
    });
    let s;
    try {
      s = await (await fetch('/admin/v1/session', { headers: headers(), cache: 'no-store' })).json();
    } catch (e) {
      setConn('cannot reach the admin listener', false);
      setTimeout(boot, 3000);
      return;
    }
    if (s.authorized) return start(s.token_required);
    if (token) {
      token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin('The saved token was refused.');
    }
    showLogin('');
  }

  function showLogin(message) {
    running = false;
    $('app').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message;
    setConn('signed out', false);
    $('token').focus();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const candidate = $('token').value;
    $('login-error').textContent = '';
    let s;
    try {
      // The session route never fails: it says whether this token opens the API.
      s = await (await fetch('/admin/v1/session', { headers: { Authorization: `Bearer ${candidate}` }, cache: 'no-store' })).json();
    } catch {
      $('login-error').textContent = 'The admin listener does not answer.';
      return;
    }
    if (!s.authorized) {
      $('login-error').textContent = 'Wrong token.';
      $('token').select();
      return;
    }
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    start(true);
  }

  function signOut(message) {
    generation++;
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    if (streamAbort) streamAbort.abort();
    clearTimeout(pollTimer);
    showLogin(message);
  }

  function start(tokenRequired) {
    running = true;
    generation++;
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = !tokenRequired;
    buildCharts();
    series.t = [];
    targetSeries.clear();
    lastT = 0;
    poll(generation);
    readEvents(generation);
    loadReloads();
    probeKeys();
  }

  function setConn(text, live) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'conn ' + (live ? 'live' : 'down');
  }

  // ---- overview charts -------------------------------------------------------------------------
  const series = { t: [] }; // columns of /admin/v1/timeseries, aligned with t
  const targetSeries = new Map(); // "group\0target" -> {rps: [], errors: []}, aligned with series.t
  let lastT = 0;
  const CHARTS = [
    { id: 'rps', title: 'Requests/s', lines: [['rps', 'requests/s']], fmt: (v) => num(v), unit: 'req/s' },
    { id: 'err', title: 'Error ratio (5xx)', lines: [['error_ratio', 'errors']], fmt: pct, max1: true },
    { id: 'lat', title: 'Latency', lines: [['p50_ms', 'p50'], ['p99_ms', 'p99']], fmt: ms },
    { id: 'ttft', title: 'Time to first token', lines: [['ttft_p50_ms', 'p50'], ['ttft_p99_ms', 'p99']], fmt: ms },
    { id: 'tok', title: 'Tokens/s', lines: [['tokens_in_ps', 'in'], ['tokens_out_ps', 'out']], fmt: (v) => num(v), unit: 'tok/s' },
    { id: 'streams', title: 'Open streams', lines: [['open_streams', 'streams'], ['in_flight', 'in flight']], fmt: (v) => num(v) },
  ];
  const chartParts = new Map();

  function buildCharts() {
    const box = $('charts');
    box.replaceChildren();
    chartParts.clear();
    for (const c of CHARTS) {
      const value = el('span', { class: 'chart-value' });
      const svg = svgEl('svg', { viewBox: '0 0 300 90', preserveAspectRatio: 'none', role: 'img', 'aria-label': c.title });
      const legend = el('span', { class: 'legend' });
      c.lines.forEach(([, name], i) => legend.append(el('span', { class: i ? 'k2' : 'k1', text: name })));
      const max = el('span', { class: 'chart-max' });
      const from = el('span', { text: '−15 min' });
      const card = el(
        'div',
        { class: 'chart', id: `chart-${c.id}` },
        el('div', { class: 'chart-head' }, el('h3', { class: 'chart-title', text: c.title }), value),
        svg,
        el('div', { class: 'chart-foot' }, from, legend, max, el('span', { text: 'now' })),
      );
      box.append(card);
      chartParts.set(c.id, { value, svg, max, from });
    }
  }

  // A path through the points, broken where a value is unknown; x from time, y scaled to max.
  function pathOf(ts, vs, x0, span, max, w, h) {
    let d = '';
    let pen = false;
    for (let i = 0; i < ts.length; i++) {
      const v = vs[i];
      if (v === null || v === undefined || !Number.isFinite(v)) {
        pen = false;
        continue;
      }
      const x = ((ts[i] - x0) / span) * w;
      const y = h - (Math.min(v, max) / max) * (h - 2) - 1;
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
      pen = true;
    }
    return d;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawCharts() {
    const ts = series.t;
    const now = ts.length ? ts[ts.length - 1] : Date.now() / 1000;
    // The span drawn: what the gateway has kept, at least a minute, at most 15 minutes.
    const span = Math.min(WINDOW_S, Math.max(60, ts.length ? now - ts[0] : 0));
    const x0 = now - span;
    const spanText = span >= 120 ? `−${Math.round(span / 60)} min` : `−${Math.round(span)} s`;
    for (const c of CHARTS) {
      const parts = chartParts.get(c.id);
      let top = 0;
      for (const [key] of c.lines) for (const v of series[key] || []) if (Number.isFinite(v) && v > top) top = v;
      const max = c.max1 ? (top > 0 ? Math.min(1, niceMax(top)) : 0.05) : niceMax(top);
      const g = [];
      for (const f of [0.25, 0.5, 0.75]) g.push(svgEl('line', { class: 'grid', x1: 0, x2: 300, y1: 90 * f, y2: 90 * f, 'vector-effect': 'non-scaling-stroke' }));
      c.lines.forEach(([key], i) => {
        const d = pathOf(ts, series[key] || [], x0, span, max, 300, 90);
        if (d) g.push(svgEl('path', { class: i ? 's2' : 's1', d, 'vector-effect': 'non-scaling-stroke' }));
      });
      parts.svg.replaceChildren(...g);
      parts.max.textContent = `max ${c.fmt(max)}`;
      parts.from.textContent = spanText;
      // The value now: the latest known point of each line.
      const latest = c.lines.map(([key]) => {
        const col = series[key] || [];
        for (let i = col.length - 1; i >= 0 && i >= col.length - 5; i--) if (Number.isFinite(col[i])) return col[i];
        return null;
      });
      parts.value.replaceChildren(latest.map((v) => c.fmt(v)).join(' / '));
      if (c.unit) parts.value.append(el('span', { class: 'unit', text: c.unit }));
    }
  }

  function addPoints(j) {
    const p = j.points || {};
    const n = (p.t || []).length;
    if (!n) return;
    const oldLen = series.t.length;
    for (const [k, col] of Object.entries(p)) {
      if (!series[k]) series[k] = new Array(oldLen).fill(null);
      series[k].push(...col);
    }
    for (const t of j.targets || []) {
      const key = t.group + '\u0000' + t.target;
      let s = targetSeries.get(key);
      if (!s) targetSeries.set(key, (s = { rps: new Array(oldLen).fill(0), errors: new Array(oldLen).fill(0) }));
      s.rps.push(...t.rps);
      s.errors.push(...t.errors);
    }
    for (const s of targetSeries.values()) {
      // A target with no new points this time (left the config): keep the columns aligned.
      while (s.rps.length < series.t.length) s.rps.push(0);
      while (s.errors.length < series.t.length) s.errors.push(0);
    }
    lastT = series.t[series.t.length - 1];
    // Drop what is older than the window.
    let drop = 0;
    while (drop < series.t.length && series.t[drop] <= lastT - WINDOW_S) drop++;
    if (drop) {
      for (const k of Object.keys(series)) series[k].splice(0, drop);
      for (const s of targetSeries.values()) {
        s.rps.splice(0, drop);
        s.errors.splice(0, drop);
      }
    }
  }

  // ---- targets -----------------------------------------------------------------------------
  let targets = [];

  function sparkline(key) {
    const svg = svgEl('svg', { class: 'spark', viewBox: '0 0 130 26', preserveAspectRatio: 'none', role: 'img' });
    const s = targetSeries.get(key);
    if (!s || !series.t.length) return svg;
    const ts = series.t.slice(-300);
    const rps = s.rps.slice(-300);
    const errs = s.errors.slice(-300);
    let top = 0;
    for (const v of rps) if (v > top) top = v;
    for (const v of errs) if (v > top) top = v;
    const max = niceMax(top);
    const now = ts[ts.length - 1];
    const span = Math.min(300, Math.max(60, now - ts[0]));
    const scale = (vs) => pathOf(ts, vs, now - span, span, max, 130, 26);
    const d = scale(rps);
    if (d) svg.append(svgEl('path', { class: 's1', d, 'vector-effect': 'non-scaling-stroke' }));
    if (errs.some((v) => v > 0)) svg.append(svgEl('path', { class: 's-err', d: scale(errs), 'vector-effect': 'non-scaling-stroke' }));
    const latest = rps.length ? rps[rps.length - 1] : 0;
    svg.setAttribute('aria-label', `${num(latest)} attempts/s now, up to ${num(top)} in the last 5 minutes (failed ones dashed)`);
    return svg;
  }

  function stateCell(t) {
    const box = el('div');
    const word = t.state === 'healthy' || t.state === 'ejected' || t.state === 'probing' ? t.state : String(t.state);
    box.append(el('span', { class: `state ${word}`, text: word }));
    if (t.state !== 'healthy') {
      const bits = [];
      if (t.ejected_until) bits.push((t.state === 'probing' ? 'probing since ' : 'until ') + timeOf(t.ejected_until));
      if (t.last_ejection_reason) bits.push(t.last_ejection_reason);
      if (bits.length) box.append(el('span', { class: 'sub', text: bits.join(' · ') }));
    }
    return box;
  }

  function renderTargets() {
    const body = $('targets').tBodies[0];
    const rows = [];
    let prevGroup = null;
    for (const t of targets) {
      const key = t.group + '\u0000' + t.target;
      const rl = t.ratelimit_remaining || {};
      const rlText = [rl.requests !== undefined ? `${num(rl.requests)} req` : null, rl.tokens !== undefined ? `${num(rl.tokens)} tok` : null].filter(Boolean).join(' · ') || '–';
      const row = el(
        'tr',
        { class: t.group !== prevGroup ? 'group-start' : null, 'data-group': t.group, 'data-target': t.target, 'data-model': t.model, 'data-state': t.state },
        td('Group', t.group),
        td('Target', el('div', null, el('span', { text: t.model }), el('span', { class: 'sub', text: t.provider }))),
        td('State', stateCell(t)),
        td('In flight', num(t.in_flight), 'num'),
        td('Errors', t.window_requests ? `${pct(t.error_ratio)} of ${num(t.window_requests)}` : '–', 'num'),
        td('TTFT', ms(t.ewma_ttfb_ms), 'num'),
        td('Rate limit left', rlText),
        td('Attempts/s', sparkline(key)),
      );
      prevGroup = t.group;
      rows.push(row);
    }
    if (!rows.length) rows.push(el('tr', null, el('td', { colspan: 8, text: 'No targets configured.' })));
    body.replaceChildren(...rows);
  }

  // ---- polling -------------------------------------------------------------------------------
  let pollTimer = null;
  function pollSoon() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => poll(generation), 0);
  }

  async function poll(gen) {
    if (gen !== generation || !running) return;
    clearTimeout(pollTimer);
    if (!document.hidden) {
      try {
        const [ts, tg] = await Promise.all([apiJson(`/admin/v1/timeseries?after=${lastT}`), apiJson('/admin/v1/targets')]);
        if (gen !== generation) return;
        addPoints(ts);
        targets = tg.targets || [];
        drawCharts();
        renderTargets();
        updateFilterChoices();
      } catch (e) {
        if (e instanceof Unauthorized) return;
        setConn('admin API unreachable, retrying', false);
      }
    }
    if (gen === generation) pollTimer = setTimeout(() => poll(gen), 1000);
  }

  // ---- events stream -------------------------------------------------------------------------
  let streamAbort = null;
  const tail = []; // newest last
  let missed = 0;

  async function readEvents(gen) {
    let backoff = 500;
    while (gen === generation) {
      streamAbort = new AbortController();
      try {
        const r = await api('/admin/v1/events?tail=20', { signal: streamAbort.signal, headers: { ...headers(), Accept: 'text/event-stream' } });
        if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
        setConn('live', true);
        backoff = 500;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done || gen !== generation) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            onEvent(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (e instanceof Unauthorized || gen !== generation) return;
      }
      if (gen !== generation) return;
      setConn('event stream lost, reconnecting', false);
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  let tailDirty = false;
  function onEvent(block) {
    let name = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) name = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (!data) return;
    let rec;
    try {
      rec = JSON.parse(data);
    } catch {
      return;
    }
    if (name === 'missed') {
      missed += rec.missed || 0;
      tailDirty = true;
      return;
    }
    if (rec.type === 'access') {
      tail.push(rec);
      if (tail.length > TAIL_KEPT) tail.splice(0, tail.length - TAIL_KEPT);
      tailDirty = true;
    } else if (rec.type === 'health') {
      pollSoon(); // show an ejection at once, not at the next tick
    } else if (rec.type === 'reload') {
      loadReloads();
      probeKeys();
      pollSoon();
    }
  }
  // The tail is redrawn at most every 500 ms, whatever the traffic.
  setInterval(() => {
    if (tailDirty && running && !document.hidden) {
      tailDirty = false;
      renderTail();
    }
  }, 500);

  // ---- request tail --------------------------------------------------------------------------
  let selected = null;

  function setChoices(select, values) {
    const cur = select.value;
    const have = new Set([...select.options].map((o) => o.value));
    let changed = false;
    for (const v of values) if (v && !have.has(v)) changed = true;
    if (!changed) return;
    const all = new Set([...have, ...values]);
    all.delete('');
    const opts = [el('option', { value: '', text: 'any' })];
    for (const v of [...all].sort()) opts.push(el('option', { value: v, text: v }));
    select.replaceChildren(...opts);
    select.value = cur;
  }

  function updateFilterChoices() {
    setChoices($('f-group'), [...targets.map((t) => t.group), ...tail.map((r) => r.group).filter(Boolean)]);
    // The tail names a target by its model name (the access record's "target").
    setChoices($('f-target'), [...targets.map((t) => t.model), ...tail.map((r) => r.target).filter(Boolean)]);
    setChoices($('f-key'), tail.map((r) => r.client_name).filter(Boolean));
  }

  function matches(r) {
    const g = $('f-group').value;
    const t = $('f-target').value;
    const k = $('f-key').value;
    const s = $('f-status').value;
    if (g && r.group !== g) return false;
    if (t && r.target !== t && !(r.tried || []).some((a) => a.target === t)) return false;
    if (k && r.client_name !== k) return false;
    if (s === 'retried') return (r.attempts || 0) > 1 || (r.tried || []).length > 0;
    if (s && String(Math.floor((r.status || 0) / 100)) !== s) return false;
    return true;
  }

  function renderTail() {
    updateFilterChoices();
    const rows = [];
    for (let i = tail.length - 1; i >= 0 && rows.length < TAIL_SHOWN; i--) {
      const r = tail[i];
      if (!matches(r)) continue;
      const sc = `status s${Math.floor((r.status || 0) / 100)}`;
      const row = el(
        'tr',
        { tabindex: 0, 'data-status': r.status, class: r === selected ? 'selected' : null },
        td('Time', timeOf(r.time)),
        td('Status', el('span', { class: sc, text: r.status })),
        td('Group', r.group || '–'),
        td('Target', r.target || '–'),
        td('Key', r.client_name || '–'),
        td('Duration', ms(r.duration_ms), 'num'),
        td('Attempts', r.attempts, 'num'),
        td('Outcome', r.outcome),
      );
      const open = () => showDetail(r);
      row.addEventListener('click', open);
      row.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          open();
        }
      });
      rows.push(row);
    }
    if (!rows.length) rows.push(el('tr', null, el('td', { colspan: 8, text: tail.length ? 'No request matches the filters.' : 'No request yet.' })));
    $('tail').tBodies[0].replaceChildren(...rows);
    $('tail-note').textContent = missed ? `${num(missed)} requests not shown (busy gateway: the tail is a sample)` : '';
  }

  function showDetail(r) {
    selected = r;
    const box = $('detail');
    if (!r) {
      box.hidden = true;
      renderTail();
      return;
    }
    $('detail-title').textContent = `${r.method || ''} ${r.path || ''} → ${r.status}`;
    const fields = [
      ['Request id', r.request_id],
      ['Time', r.time],
      ['Group', r.group],
      ['Key', r.client_name],
      ['Client', r.client],
      ['Answered by', r.target ? `${r.target} (${r.provider || ''})` : null],
      ['Outcome', r.detail ? `${r.outcome}: ${r.detail}` : r.outcome],
      ['Duration', ms(r.duration_ms)],
      ['Upstream time', ms(r.upstream_ms)],
      ['Time to first byte', ms(r.ttfb_ms)],
      ['Tokens', r.prompt_tokens !== null && r.prompt_tokens !== undefined ? `${r.prompt_tokens} in, ${r.completion_tokens ?? '–'} out` : null],
      ['Stream', r.stream ? 'yes' : 'no'],
    ];
    const dl = $('detail-fields');
    dl.replaceChildren();
    for (const [k, v] of fields) if (v !== null && v !== undefined && v !== '') dl.append(el('dt', { text: k }), el('dd', { text: v }));
    const ol = $('detail-attempts');
    ol.replaceChildren();
    for (const a of r.tried || []) ol.append(el('li', { class: 'failed', text: `${a.target}: failed (${a.cause || 'unknown cause'})` }));
    if (r.target) ol.append(el('li', { class: 'final', text: `${r.target}: answered ${r.status}${r.outcome && r.outcome !== 'ok' ? ` (${r.outcome})` : ''}` }));
    if (!ol.children.length) ol.append(el('li', { text: 'No provider was tried (refused by the gateway).' }));
    box.hidden = false;
    renderTail();
  }

  // ---- reloads and config ------------------------------------------------------------------
  async function loadReloads() {
    try {
      const [rl, cfg] = await Promise.all([apiJson('/admin/v1/reloads'), apiJson('/admin/v1/config')]);
      const items = [];
      for (const r of rl.reloads || []) {
        const head = `${timeOf(r.time)} · ${r.trigger} · ${r.applied ? 'applied' : 'refused'} · generation ${r.generation}`;
        const li = el('li', { class: r.applied ? 'applied' : 'refused' }, el('strong', { text: r.applied ? 'Applied' : 'Refused' }), ' ', el('span', { text: head }));
        if ((r.diagnostics || []).length) {
          const ul = el('ul', { class: 'diag' });
          for (const d of r.diagnostics) ul.append(el('li', { class: d.level, text: `${d.level}: ${d.path ? d.path + ': ' : ''}${d.message}` }));
          li.append(ul);
        }
        items.push(li);
      }
      if (!items.length) items.push(el('li', { text: 'No reload yet.' }));
      $('reloads').replaceChildren(...items);
      $('config').textContent = JSON.stringify(cfg, null, 2);
    } catch (e) {
      if (!(e instanceof Unauthorized)) $('reloads').replaceChildren(el('li', { text: 'Could not load the reloads.' }));
    }
  }

  // ---- keys (when the gateway has /admin/v1/keys) ------------------------------------------
  let keysTimer = null;
  async function probeKeys() {
    clearTimeout(keysTimer);
    const gen = generation;
    let r;
    try {
      r = await api('/admin/v1/keys');
    } catch {
      return;
    }
    if (gen !== generation) return;
    if (r.status !== 200) {
      $('keys-panel').hidden = true; // a gateway without named keys: 404
      return;
    }
    try {
      renderKeys(await r.json());
      $('keys-panel').hidden = false;
    } catch {
      $('keys-panel').hidden = true;
    }
    keysTimer = setTimeout(probeKeys, 5000);
  }

  function usageText(u) {
    if (!u || typeof u !== 'object') return u === undefined || u === null ? '–' : num(Number(u));
    const parts = [];
    if (u.requests !== undefined) parts.push(`${num(u.requests)} req`);
    const tokens = u.tokens ?? (u.input_tokens !== undefined || u.output_tokens !== undefined ? (u.input_tokens || 0) + (u.output_tokens || 0) : undefined);
    if (tokens !== undefined) parts.push(`${num(tokens)} tok`);
    if (u.usd !== undefined) parts.push(`$${Number(u.usd).toFixed(2)}`);
    return parts.join(' · ') || '–';
  }

  function budgetCell(b) {
    if (!b || typeof b !== 'object') return document.createTextNode('–');
    const amount = Number(b.amount ?? b.limit ?? 0);
    const used = Number(b.used ?? 0);
    const unit = b.unit === 'usd' ? '$' : '';
    const ratio = amount > 0 ? used / amount : 0;
    const svg = svgEl('svg', { class: 'spark', viewBox: '0 0 100 8', preserveAspectRatio: 'none', role: 'img', 'aria-label': `${pct(ratio)} of the budget used` });
    svg.append(svgEl('rect', { class: 'grid', x: 0, y: 0, width: 100, height: 8, fill: 'currentColor', opacity: 0.15 }));
    svg.append(svgEl('rect', { x: 0, y: 0, width: Math.min(100, ratio * 100).toFixed(1), height: 8, class: ratio >= 1 ? 'bar-over' : 'bar-used', fill: ratio >= 1 ? '#dc2626' : '#2563eb' }));
    // Reserved: what requests in flight hold back, apart from what was used.
    const reserved = Number(b.reserved ?? 0);
    const held = reserved > 0 ? ` · ${unit}${num(reserved)} reserved` : '';
    return el('div', null, svg, el('span', { class: 'sub', text: `${unit}${num(used)} of ${unit}${num(amount)} ${b.unit === 'usd' ? '' : b.unit || ''} per ${b.period || 'period'} (${pct(ratio)})${held}` }));
  }

  function renderKeys(j) {
    const list = Array.isArray(j) ? j : j.keys || [];
    // With Redis the figures are the shared ones; when Redis failed they are this instance's.
    const note = $('keys-source');
    note.hidden = j.source !== 'local';
    note.textContent = j.source === 'local' ? `Redis did not answer (${j.redis_error || 'error'}): this instance's own counters, not the shared ones.` : '';
    const rows = [];
    for (const k of list) {
      // /admin/v1/keys: usage_today / usage_month come from the usage ledger (absent without
      // one); `usage` holds the limit windows' remainders, not totals; rate_limited counts 429s
      // by limit.
      const hits = k.rate_limited;
      rows.push(
        el(
          'tr',
          null,
          td('Key', el('div', null, el('span', { text: k.name ?? k.id ?? '?' }), k.disabled ? el('span', { class: 'sub', text: 'disabled' }) : null)),
          td('Today', usageText(k.usage_today)),
          td('This month', usageText(k.usage_month)),
          td('Budget', budgetCell(k.budget)),
          td('Rate-limit hits', typeof hits === 'object' && hits ? Object.entries(hits).map(([a, b]) => `${a} ${b}`).join(' · ') || '0' : num(hits ?? null), 'num'),
        ),
      );
    }
    if (!rows.length) rows.push(el('tr', null, el('td', { colspan: 5, text: 'No keys configured.' })));
    $('keys').tBodies[0].replaceChildren(...rows);
  }

  boot();
})();
