// corsgate demo page: one button per scenario. Each runs fetch() against the API behind corsgate,
// shows what the browser allowed and what script could read, and asks the page server for corsgate's
// own explanation of the decision (the same engine as `corsgate explain`).
'use strict';

const DEMO = window.CORSGATE_DEMO;

const SCENARIOS = [
  {
    id: 'simple-get',
    title: 'Simple GET',
    what: 'A plain GET is a "simple" request: no preflight. corsgate forwards it and adds ' +
      'Access-Control-Allow-Origin for an allowed origin, so the browser hands the response to script.',
    steps: [{ path: '/api/hello', init: {} }],
    expect: 'allowed',
  },
  {
    id: 'preflight-put',
    title: 'Preflighted PUT with a JSON body',
    what: 'PUT, Content-Type: application/json and a custom X-Demo-Token header make the browser send ' +
      'an OPTIONS preflight first. corsgate answers it itself; the upstream only sees the PUT.',
    steps: [{
      path: '/api/items/42',
      init: {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json', 'X-Demo-Token': 'demo-token' },
        body: JSON.stringify({ name: 'widget', qty: 3 }),
      },
      preflight: ['content-type', 'x-demo-token'],
    }],
    expect: 'allowed',
  },
  {
    id: 'credentials',
    title: 'Credentials: a cookie',
    what: 'With credentials: "include", the API sets a cookie (GET /api/cookie) and the next call ' +
      'sends it back. The browser allows this only because the policy has allow_credentials = true ' +
      'and corsgate echoes the exact origin.',
    steps: [
      { path: '/api/cookie', init: { credentials: 'include' } },
      { path: '/api/whoami', init: { credentials: 'include' } },
    ],
    expect: 'allowed',
  },
  {
    id: 'denied-header',
    title: 'A header the policy does not allow',
    what: 'X-Not-Allowed is not in allowed_headers. corsgate denies the preflight, so the browser ' +
      'never sends the GET at all: fetch() rejects.',
    steps: [{
      path: '/api/hello',
      init: { headers: { 'X-Not-Allowed': 'yes' } },
      preflight: ['x-not-allowed'],
    }],
    expect: 'blocked',
  },
  {
    id: 'exposed-headers',
    title: 'Exposed response headers',
    what: 'The upstream sends X-Demo-Request-Id and X-Demo-Internal. Only X-Demo-Request-Id is in ' +
      'expose_headers, so script can read it and not the other one (look at the header list).',
    steps: [{ path: '/api/hello', init: {} }],
    expect: 'allowed',
  },
  {
    id: 'upstream-error',
    title: 'An upstream error',
    what: 'The upstream answers 500. corsgate still adds its CORS headers, so the page reads the error ' +
      'body instead of an opaque network failure.',
    steps: [{ path: '/api/status/500', init: {} }],
    expect: 'allowed',
  },
];

window.demoResults = {};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function runStep(step) {
  const url = DEMO.api + step.path;
  const method = (step.init && step.init.method) || 'GET';
  try {
    const r = await fetch(url, step.init);
    const headers = {};
    r.headers.forEach((v, k) => { headers[k] = v; });
    return { allowed: true, url, method, status: r.status, headers, body: await r.text() };
  } catch (e) {
    return { allowed: false, url, method, error: String(e) };
  }
}

async function explain(query) {
  try {
    const r = await fetch('/explain', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(query),
    });
    return await r.json();
  } catch (e) {
    return { error: String(e) };
  }
}

function explainQueries(step) {
  const method = (step.init && step.init.method) || 'GET';
  const headers = step.preflight || [];
  const base = { origin: location.origin, path: step.path, headers };
  const queries = [];
  if (step.preflight) queries.push({ ...base, method, preflight: true });
  queries.push({ ...base, method, preflight: false });
  return queries;
}

async function runScenario(s) {
  const box = document.getElementById('scenario-' + s.id);
  box.dataset.state = 'running';
  const steps = [];
  for (const step of s.steps) {
    const got = await runStep(step);
    got.explain = [];
    let queries = explainQueries(step);
    // A denied preflight means the browser never sent the request itself: explain only the preflight.
    if (step.preflight && !got.allowed) queries = queries.slice(0, 1);
    for (const q of queries) got.explain.push({ query: q, answer: await explain(q) });
    steps.push(got);
    if (!got.allowed) break;
  }
  const outcome = steps.every((st) => st.allowed) ? 'allowed' : 'blocked';
  const last = steps[steps.length - 1];
  const result = { outcome, expected: s.expect, steps, status: last.status, headers: last.headers, body: last.body, error: last.error };
  window.demoResults[s.id] = result;
  render(box, s, result);
  box.dataset.outcome = outcome;
  box.dataset.state = 'done';
  return result;
}

function render(box, s, result) {
  const out = box.querySelector('.result');
  out.replaceChildren();
  const browser = el('section', {}, el('h3', {}, 'What the browser allowed'));
  for (const st of result.steps) {
    const line = st.allowed
      ? el('p', { class: 'verdict allowed' }, 'Allowed: fetch() resolved (HTTP ' + st.status + ')')
      : el('p', { class: 'verdict blocked' }, 'Blocked: fetch() rejected: ' + st.error);
    browser.append(el('p', {}, el('code', {}, st.method + ' ' + st.url)), line);
  }
  const want = DEMO.role === 'allowed' ? result.expected : 'blocked';
  const as = result.outcome === want;
  browser.append(el('p', { class: as ? 'expect' : 'expect mismatch' },
    as ? 'As expected from this origin.' : 'Unexpected: expected ' + want + ' from this origin.'));

  const script = el('section', {}, el('h3', {}, 'What script could read'));
  if (result.outcome === 'allowed') {
    const hs = Object.entries(result.headers || {}).map(([k, v]) => k + ': ' + v).join('\n');
    script.append(el('p', {}, 'Status ' + result.status), el('p', {}, 'Headers visible to script:'),
      el('pre', {}, hs || '(none)'), el('p', {}, 'Body:'), el('pre', {}, pretty(result.body)));
  } else {
    script.append(el('p', {}, 'Nothing: no status, no headers, no body. The browser only says "' +
      (result.error || 'failed') + '"; the reason is in the devtools console, and in corsgate\'s explanation.'));
  }

  const gate = el('section', {}, el('h3', {}, "corsgate's explanation"));
  for (const st of result.steps) {
    for (const { query, answer } of st.explain) gate.append(explainLine(query, answer));
  }
  out.append(browser, script, gate);
}

function explainLine(q, a) {
  const what = q.preflight ? 'OPTIONS preflight for ' + q.method : q.method;
  if (a.error) return el('p', {}, what + ': explain failed: ' + a.error);
  const heads = Object.entries(a.headers || {}).map(([k, v]) => k + ': ' + v).join('\n');
  const action = a.status === null || a.status === undefined
    ? 'forwards it to the upstream'
    : 'answers ' + a.status + ' itself';
  return el('div', {},
    el('p', {}, el('strong', {}, what + ' ' + q.path + ': '), el('code', {}, a.decision),
      ' (route ' + (a.route || '-') + ', policy ' + (a.policy || '-') + ')'),
    el('p', {}, a.reason + '. corsgate ' + action + '.'),
    el('pre', {}, heads || '(no CORS headers added)'));
}

function pretty(body) {
  try { return JSON.stringify(JSON.parse(body), null, 2); } catch (_) { return String(body); }
}

function build() {
  const allowed = DEMO.role === 'allowed';
  const who = document.getElementById('whoami');
  who.className = 'banner ' + (allowed ? 'allowed' : 'denied');
  who.textContent = 'This page is served from ' + location.origin + ', an origin the demo policy ' +
    (allowed ? 'ALLOWS.' : 'DENIES: every cross-origin call below should be blocked.');
  document.getElementById('api-url').textContent = DEMO.api + '/api/';
  const other = document.getElementById('other-page');
  other.href = DEMO.other;
  other.textContent = allowed ? 'the same page on a denied origin' : 'the same page on the allowed origin';
  document.getElementById('policy').textContent = DEMO.policy;
  const main = document.getElementById('scenarios');
  for (const s of SCENARIOS) {
    const button = el('button', { id: 'run-' + s.id, type: 'button' }, 'Run');
    button.addEventListener('click', () => runScenario(s));
    main.append(el('article', { id: 'scenario-' + s.id, class: 'scenario', 'data-state': 'idle' },
      el('h2', {}, s.title + ' '), el('p', { class: 'what' }, s.what), button,
      el('div', { class: 'result' })));
  }
  document.getElementById('run-all').addEventListener('click', async () => {
    for (const s of SCENARIOS) await runScenario(s);
  });
}

build();
