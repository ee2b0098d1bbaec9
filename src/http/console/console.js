// streamguard console: plain JavaScript, no build step, no third-party code. Everything it
// shows comes from /api/v1 with the token typed in (kept in this tab's sessionStorage);
// the server checks the token and role of every call, the page only hides what the role
// may not do. Data is put into the page with textContent only, never parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'streamguard.token';
  const RANK = { viewer: 0, moderator: 1, admin: 2 };
  const ACTIONS = {
    claim: { from: ['open'], title: 'Claim', reason: 'reviewing' },
    confirm: { from: ['open', 'claimed'], title: 'Confirm', reason: 'confirmed by a moderator' },
    dismiss: { from: ['open', 'claimed'], title: 'Dismiss', reason: 'false positive' },
  };
  const AUDIT_PAGE = 50;
  const AUDIT_MAX = 1000; // the API's largest page
  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    me: null,
    alerts: [],
    streams: [],
    selected: null, // alert id under the keyboard cursor
    open: null, // the alert shown in the detail panel
    revealed: false,
    blob: null,
    events: null, // AbortController of the live-update stream
    poll: null,
    refreshTimer: null,
    gen: 0, // bumped at sign-out: answers to requests made before are dropped
    evSeq: 0, // evidence requests: only the latest one's answer is shown
    alertSeq: 0, // queue refreshes: only the latest one's answer is shown
    auditSeq: 0, // audit refreshes: likewise
    closeDialog: null, // cancels the open reason dialog
    auditLimit: AUDIT_PAGE, // audit entries shown; "Older entries" adds a page
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  const pad = (n) => String(n).padStart(2, '0');
  function when(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  // A table cell with the time of day only for today (the full date in its tooltip).
  function whenCell(ms) {
    const full = when(ms);
    const today = new Date().toDateString() === new Date(ms).toDateString();
    return el('td', { title: full, text: today ? full.slice(11) : full });
  }
  // A cell cut to its width with an ellipsis; the whole text in its tooltip.
  const cutCell = (text) => el('td', { class: 'cut', title: text, text });
  function streamTime(ms) {
    const s = Math.floor(ms / 1000);
    return `${Math.floor(s / 60)}:${pad(s % 60)}.${String(ms % 1000).padStart(3, '0')}`;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '–';
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }
  const badge = (word) => el('span', { class: `badge ${word}`, text: word });
  const canAct = () => S.me && RANK[S.me.role] >= RANK.moderator;

  function status(msg, isError) {
    const s = $('status');
    s.textContent = msg || '';
    s.classList.toggle('error', !!isError);
  }

  // Whether api() has dealt with this error already: a 401 sent the page back to sign-in,
  // status 0 is the answer to a request made before a sign-out.
  const handled = (e) => e.status === 401 || e.status === 0;

  async function api(path, opts = {}) {
    const gen = S.gen;
    const stale = () => new ApiError(0, 'signed out meanwhile');
    const headers = {};
    if (S.token) headers.Authorization = `Bearer ${S.token}`;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method: opts.method || 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: 'no-store',
    });
    if (gen !== S.gen) throw stale();
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try {
        const j = await r.json();
        if (j.error) msg = j.error;
      } catch (_) { /* not JSON */ }
      if (r.status === 401) signIn(S.token ? `Token not accepted: ${msg}` : '');
      throw new ApiError(r.status, msg);
    }
    const out = opts.raw ? r : await r.json();
    if (gen !== S.gen) throw stale();
    return out;
  }

  // --- Signing in and out -------------------------------------------------------------
  function forget() {
    S.gen += 1;
    clearTimeout(S.refreshTimer);
    if (S.closeDialog) S.closeDialog();
    if (S.events) S.events.abort();
    S.events = null;
    clearInterval(S.poll);
    S.me = null;
    S.alerts = [];
    S.streams = [];
    S.auditLimit = AUDIT_PAGE;
    $('audit-older').hidden = true;
    $('audit-end').textContent = '';
    closeDetail();
    for (const id of ['alerts', 'streams', 'halts', 'audit']) $(id).tBodies[0].replaceChildren();
  }

  function signIn(message) {
    forget();
    $('app').hidden = true;
    $('keys').hidden = true;
    $('signout').hidden = true;
    $('who').textContent = '';
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('token').value = '';
    $('token').focus();
    setLive(false);
  }

  async function start() {
    forget(); // a sign-in replaces whatever an earlier one started
    const gen = S.gen;
    try {
      S.me = await api('/api/v1/session');
    } catch (e) {
      if (!handled(e)) signIn(`The daemon did not answer: ${e.message}`);
      return;
    }
    $('signin').hidden = true;
    $('app').hidden = false;
    $('keys').hidden = false;
    $('signout').hidden = !S.me.tokens;
    $('who').textContent = S.me.tokens
      ? `${S.me.name.replace(/^token:/, '')} (${S.me.role})`
      : 'open API (no tokens configured, loopback only)';
    status('');
    await refreshAll();
    if (gen !== S.gen) return; // signed out (or in again) meanwhile
    listen();
    S.poll = setInterval(() => refreshStreams().catch(() => {}), 5000);
    const first = $('alerts').querySelector('button.open');
    (first || $('queue-panel')).focus();
  }

  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    S.token = $('token').value.trim();
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, S.token);
    start();
  });
  $('signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = '';
    signIn('Signed out.');
  });

  // --- Live updates (server-sent events read with fetch, so the token goes in a header) ---
  function setLive(on) {
    const l = $('live');
    l.textContent = on ? 'live' : 'offline';
    l.classList.toggle('on', on);
    l.classList.toggle('off', !on);
  }

  async function listen() {
    if (S.events) S.events.abort();
    const ctrl = new AbortController();
    S.events = ctrl;
    let delay = 1000;
    while (!ctrl.signal.aborted) {
      try {
        const headers = S.token ? { Authorization: `Bearer ${S.token}` } : {};
        const r = await fetch('/api/v1/events', { headers, signal: ctrl.signal, cache: 'no-store' });
        if (r.status === 401) {
          signIn('Token not accepted any more.');
          return;
        }
        if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
        setLive(true);
        delay = 1000;
        scheduleRefresh(); // whatever happened while not listening
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (/^(event|data):/m.test(block)) scheduleRefresh();
          }
        }
      } catch (_) {
        if (ctrl.signal.aborted) return;
      }
      setLive(false);
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  function scheduleRefresh() {
    clearTimeout(S.refreshTimer);
    S.refreshTimer = setTimeout(() => refreshAll().catch(() => {}), 250);
  }

  async function refreshAll() {
    try {
      await Promise.all([refreshAlerts(), refreshStreams(), refreshHalts(), refreshAudit()]);
      if (S.open) {
        const id = S.open.id;
        await refreshDetail().catch((e) => {
          if (!gone(e, id)) throw e;
        });
      }
    } catch (e) {
      if (!handled(e)) status(`Could not refresh: ${e.message}`, true);
    }
  }

  // --- The alert queue ------------------------------------------------------------------
  async function refreshAlerts() {
    const filter = $('state-filter').value;
    const q = `/api/v1/alerts?limit=200${filter ? `&state=${encodeURIComponent(filter)}` : ''}`;
    const seq = ++S.alertSeq;
    const alerts = (await api(q)).alerts;
    if (seq !== S.alertSeq) return; // a later refresh (another filter, say) wins
    S.alerts = alerts;
    renderAlerts();
  }

  function scoreText(a) {
    return a.reason === 'classifier' && a.score !== null ? a.score.toFixed(3) : `d=${a.distance}`;
  }

  function renderAlerts() {
    const focused = document.activeElement && document.activeElement.closest('#alerts tr');
    const focusId = focused ? focused.dataset.id : null;
    const rows = S.alerts.map((a) => {
      const tr = el('tr', {
        dataset: { id: a.id },
        class: `state-${a.state}${String(a.id) === String(S.selected) ? ' selected' : ''}`,
        'aria-selected': String(String(a.id) === String(S.selected)),
      },
      el('td', {}, el('button', {
        type: 'button',
        class: 'link open',
        'aria-label': `Open alert ${a.id} on ${a.stream}`,
        onclick: () => openAlert(a.id),
        onfocus: () => select(a.id, false),
        text: `#${a.id}`,
      })),
      whenCell(a.created_at_ms),
      cutCell(a.stream),
      el('td', { text: a.reason === 'classifier' ? 'classifier' : 'hash' }),
      cutCell(a.bank),
      cutCell(a.label && a.label !== a.item_id ? `${a.item_id} (${a.label})` : a.item_id),
      el('td', { text: scoreText(a) }),
      el('td', {}, badge(a.action)),
      el('td', { title: a.claimed_by ? `claimed by ${a.claimed_by.replace(/^token:/, '')}` : undefined }, badge(a.state)),
      el('td', { text: duration(a.detect_ms) }));
      return tr;
    });
    $('alerts').tBodies[0].replaceChildren(...rows);
    $('alerts-empty').hidden = rows.length > 0;
    const open = S.alerts.filter((a) => a.state === 'open').length;
    $('queue-count').textContent = `${S.alerts.length} shown, ${open} open`;
    if (focusId) {
      const b = $('alerts').querySelector(`tr[data-id="${focusId}"] button.open`);
      if (b) b.focus();
    }
  }

  function select(id, focus) {
    S.selected = id;
    for (const tr of $('alerts').tBodies[0].rows) {
      const on = tr.dataset.id === String(id);
      tr.classList.toggle('selected', on);
      tr.setAttribute('aria-selected', String(on));
      if (on && focus) tr.querySelector('button.open').focus();
    }
  }

  function move(step) {
    if (!S.alerts.length) return;
    let i = S.alerts.findIndex((a) => String(a.id) === String(S.selected));
    i = i < 0 ? 0 : Math.min(Math.max(i + step, 0), S.alerts.length - 1);
    select(S.alerts[i].id, true);
  }

  $('state-filter').addEventListener('change', () => refreshAlerts().catch((e) => status(e.message, true)));

  // --- One alert ------------------------------------------------------------------------
  function dropEvidence() {
    if (S.blob) URL.revokeObjectURL(S.blob);
    S.blob = null;
    S.revealed = false;
    const img = $('evidence');
    img.removeAttribute('src');
    img.hidden = true;
    delete img.dataset.state;
  }

  function closeDetail() {
    dropEvidence();
    S.open = null;
    $('detail-body').hidden = true;
    $('detail-empty').hidden = false;
    $('detail-h').textContent = 'Alert';
  }

  async function openAlert(id) {
    select(id, false);
    if (!S.open || S.open.id !== id) {
      // Nothing of the previous alert stays on screen while this one loads.
      dropEvidence();
      $('detail-body').hidden = true;
      $('detail-empty').hidden = false;
      $('detail-h').textContent = `Alert #${id}`;
    }
    S.open = { id };
    try {
      await refreshDetail();
    } catch (e) {
      if (!gone(e, id)) status(`Alert ${id}: ${e.message}`, true);
      return;
    }
    $('detail').focus();
    const a = S.open;
    if (a.reason === 'classifier') loadEvidence(a.id, false);
  }

  // An alert that answers 404 was deleted by retention (audit entries can outlive their
  // alert): the panel closes and says so, once, instead of failing at every refresh.
  function gone(e, id) {
    if (e.status !== 404 || !S.open || S.open.id !== id) return false;
    closeDetail();
    status(`Alert #${id} is no longer in the store: closed alerts are deleted after store.retain_*_days; its audit entries remain.`, true);
    return true;
  }

  async function refreshDetail() {
    const id = S.open.id;
    const a = await api(`/api/v1/alerts/${id}`);
    const audit = await api(`/api/v1/audit?alert=${id}&limit=${AUDIT_MAX}`);
    if (!S.open || S.open.id !== id) return;
    S.open = a;
    renderDetail(a);
    renderHistory(audit.audit);
  }

  function renderDetail(a) {
    $('detail-h').textContent = `Alert #${a.id}`;
    $('detail-empty').hidden = true;
    $('detail-body').hidden = false;
    const rows = [
      ['Stream', a.stream],
      ['Reason', a.reason === 'classifier' ? 'classifier score over threshold' : 'hash match against a bank'],
      [a.reason === 'classifier' ? 'Model' : 'Bank', a.bank],
      [a.reason === 'classifier' ? 'Label' : 'Item', a.item_id],
      a.reason === 'classifier' ? ['Highest score', a.score === null ? '–' : a.score.toFixed(4)] : ['Distance', `${a.distance} (${a.variant}, quality ${a.quality})`],
      ['Verdict', badge(a.action)],
      ['State', badge(a.state)],
      ['Claimed by', a.claimed_by ? a.claimed_by.replace(/^token:/, '') : '–'],
      ['Frames', `${a.hits} (stream time ${streamTime(a.frame_pts_ms)} to ${streamTime(a.last_frame_pts_ms)})`],
      ['Raised', when(a.created_at_ms)],
      ['Time to detect', duration(a.detect_ms)],
    ];
    $('detail-fields').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
    const moderator = canAct();
    for (const [name, spec] of Object.entries(ACTIONS)) {
      const b = $(`act-${name}`);
      const allowed = spec.from.includes(a.state);
      b.disabled = !moderator || !allowed;
      b.title = !moderator ? 'needs the moderator role' : allowed ? '' : `not possible for a ${a.state} alert`;
    }
    const reveal = $('reveal');
    const cap = $('evidence-caption');
    if (a.reason === 'classifier') {
      reveal.hidden = false;
      reveal.disabled = !moderator;
      reveal.title = moderator ? '' : 'needs the moderator role';
      reveal.textContent = S.revealed ? 'Blur again' : 'Reveal evidence';
      cap.textContent = S.revealed
        ? 'Unblurred, shown to you; the reveal is in the audit log.'
        : 'Blurred greyscale thumbnail of the first frame. Revealing it is recorded in the audit log.';
    } else {
      reveal.hidden = true;
      cap.textContent = 'No pixels are kept for hash matches: the bank, item and distance are the evidence.';
    }
  }

  function renderHistory(entries) {
    const items = entries.map((e) => el('li', {},
      `${when(e.at_ms)} `, el('strong', { text: e.event.replace(/_/g, ' ') }),
      ` by ${e.actor.replace(/^token:/, '')}`, e.reason ? `: ${e.reason}` : ''));
    if (!items.length) items.push(el('li', { class: 'muted', text: 'No actions yet.' }));
    $('detail-audit').replaceChildren(...items);
  }

  async function loadEvidence(id, reveal) {
    const seq = ++S.evSeq;
    const gen = S.gen;
    const current = () => seq === S.evSeq && gen === S.gen && S.open && S.open.id === id;
    try {
      const r = await api(`/api/v1/alerts/${id}/evidence${reveal ? '?reveal=true' : ''}`, { raw: true });
      const blob = await r.blob();
      if (!current()) return; // another alert, a later request, or signed out meanwhile
      dropEvidence();
      S.blob = URL.createObjectURL(blob);
      S.revealed = reveal;
      const img = $('evidence');
      img.onload = () => {
        img.dataset.state = reveal ? 'revealed' : 'blurred';
      };
      img.alt = reveal ? `Evidence of alert ${id}, unblurred` : `Evidence of alert ${id}, blurred`;
      img.src = S.blob;
      img.hidden = false;
      renderDetail(S.open);
      if (reveal) refreshAll();
    } catch (e) {
      if (current()) $('evidence-caption').textContent = `No evidence: ${e.message}`;
    }
  }

  $('reveal').addEventListener('click', () => {
    if (!S.open || !S.open.stream || $('detail-body').hidden) return;
    if (S.revealed) loadEvidence(S.open.id, false);
    else loadEvidence(S.open.id, true);
  });
  $('detail-close').addEventListener('click', () => {
    const id = S.open && S.open.id;
    closeDetail();
    if (id) select(id, true);
  });

  // --- Actions (each asks for a reason, which goes to the audit log) --------------------
  function ask(title, text, reason) {
    const dlg = $('confirm-dialog');
    const back = document.activeElement;
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    const input = $('confirm-reason');
    input.value = reason;
    return new Promise((resolve) => {
      let done = false;
      const finish = (v) => {
        if (done) return;
        done = true;
        S.closeDialog = null;
        if (dlg.open) dlg.close();
        if (back && back.isConnected) back.focus();
        resolve(v);
      };
      $('confirm-form').onsubmit = (ev) => {
        ev.preventDefault();
        if (input.value.trim()) finish(input.value.trim());
      };
      $('confirm-cancel').onclick = () => finish(null);
      S.closeDialog = () => finish(null);
      dlg.oncancel = (ev) => {
        ev.preventDefault();
        finish(null);
      };
      dlg.showModal();
      input.select();
    });
  }

  async function act(name) {
    const a = S.open;
    const spec = ACTIONS[name];
    if (!a || !a.stream || !canAct() || !spec.from.includes(a.state)) return;
    const reason = await ask(`${spec.title} alert #${a.id}`, `${a.stream}: ${a.bank} / ${a.item_id}`, spec.reason);
    if (reason === null) return;
    try {
      await api(`/api/v1/alerts/${a.id}/${name}`, { method: 'POST', body: { reason } });
      status(`Alert #${a.id}: ${name} recorded.`);
    } catch (e) {
      status(`Alert #${a.id} not changed: ${e.message}`, true);
    }
    await refreshAll();
    // The button pressed may be disabled now: keep the focus in the alert.
    if (S.open && S.open.id === a.id) $('detail').focus();
  }
  for (const name of Object.keys(ACTIONS)) $(`act-${name}`).addEventListener('click', () => act(name));
  $('audit-older').addEventListener('click', () => olderAudit());

  // --- Streams --------------------------------------------------------------------------
  async function refreshStreams() {
    S.streams = (await api('/api/v1/streams')).streams;
    renderStreams();
  }

  function sampling(s) {
    const a = s.adaptive;
    const ms = a ? a.current_interval_ms : s.interval_ms;
    const every = ms ? `1 frame / ${duration(ms)}` : 'every frame';
    return a && a.dense ? `${every} (dense)` : every;
  }

  function renderStreams() {
    const focusedStream = document.activeElement && document.activeElement.closest('#streams tr');
    const keep = focusedStream ? focusedStream.dataset.stream : null;
    const rows = S.streams.map((s) => {
      const word = s.halted ? 'halted' : s.state;
      const b = el('button', {
        type: 'button',
        class: s.halted ? 'reinstate' : 'halt danger',
        text: s.halted ? 'Reinstate' : 'Halt',
        'aria-label': `${s.halted ? 'Reinstate' : 'Halt'} stream ${s.id}`,
        disabled: !canAct(),
        title: canAct() ? undefined : 'needs the moderator role',
        onclick: () => haltOrReinstate(s),
      });
      return el('tr', { dataset: { stream: s.id } },
        el('td', { text: s.id }),
        el('td', {}, badge(word), s.reason && word !== 'running' ? el('span', { class: 'muted', text: ` ${s.reason}` }) : null),
        el('td', { text: s.mode }),
        el('td', { text: sampling(s) }),
        el('td', { text: s.frames_analysed }),
        el('td', { text: s.matches }),
        el('td', {}, b));
    });
    $('streams').tBodies[0].replaceChildren(...rows);
    $('streams-empty').hidden = rows.length > 0;
    if (keep) {
      const tr = [...$('streams').tBodies[0].rows].find((r) => r.dataset.stream === keep);
      if (tr) tr.querySelector('button').focus();
    }
  }

  async function haltOrReinstate(s) {
    const verb = s.halted ? 'reinstate' : 'halt';
    const reason = await ask(
      `${s.halted ? 'Reinstate' : 'Halt'} stream ${s.id}`,
      s.halted ? 'The stream may publish again.' : 'The stream is cut off and refused until reinstated.',
      s.halted ? 'reviewed: reinstated' : 'halted by a moderator',
    );
    if (reason === null) return;
    try {
      await api(`/api/v1/streams/${encodeURIComponent(s.id)}/${verb}`, { method: 'POST', body: { reason } });
      status(`Stream ${s.id}: ${verb} done.`);
    } catch (e) {
      status(`Stream ${s.id} not changed (${e.status}): ${e.message}`, true);
    }
    await refreshAll();
  }

  // --- Halted streams -------------------------------------------------------------------
  // The deny list, streams no longer live included: each with who halted it, why, since
  // when and the alert, and a Reinstate button (moderator). A halt that no actuator carried
  // out (actuator "none": recorded only) says so.
  async function refreshHalts() {
    const halts = await api('/api/v1/halts');
    const rows = halts.halts.map((h) => {
      const how = h.actuator;
      const recordedOnly = how && how.actuator === 'none';
      const failed = how && how.event === 'halt_failed';
      const b = el('button', {
        type: 'button',
        class: 'reinstate',
        text: 'Reinstate',
        'aria-label': `Reinstate stream ${h.stream}`,
        disabled: !canAct(),
        title: canAct() ? undefined : 'needs the moderator role',
        onclick: () => haltOrReinstate({ id: h.stream, halted: true }),
      });
      return el('tr', { dataset: { stream: h.stream } },
        cutCell(h.stream),
        whenCell(h.since_ms),
        cutCell(h.actor.replace(/^token:/, '')),
        el('td', { class: 'wrap', text: h.reason }),
        el('td', {}, h.alert_id ? el('button', {
          type: 'button', class: 'link', text: `#${h.alert_id}`, onclick: () => openAlert(h.alert_id),
        }) : ''),
        el('td', { class: 'wrap' },
          badge(h.watched ? 'live' : 'gone'),
          recordedOnly ? el('span', {
            class: 'muted recorded-only',
            text: ' recorded only: no actuator is configured, the publisher was not cut off',
          }) : null,
          failed ? el('span', { class: 'error', text: ` not cut off: ${how.detail}` }) : null),
        el('td', {}, b));
    });
    $('halts').tBodies[0].replaceChildren(...rows);
    $('halts-empty').hidden = rows.length > 0;
  }

  // --- Audit trail ----------------------------------------------------------------------
  // The newest S.auditLimit entries, fetched whole each time (entries never change), so
  // that a live refresh keeps the depth the moderator paged to.
  async function refreshAudit() {
    const limit = S.auditLimit;
    const seq = ++S.auditSeq;
    const entries = (await api(`/api/v1/audit?limit=${limit}`)).audit;
    if (seq !== S.auditSeq) return; // a later refresh (a deeper page, say) wins
    const more = entries.length === limit && limit < AUDIT_MAX;
    $('audit-older').hidden = !more;
    $('audit-end').textContent = entries.length === AUDIT_MAX
      ? `The latest ${AUDIT_MAX} entries; older ones through /api/v1/audit?before=<id>.` : '';
    const rows = entries.map((e) => el('tr', { dataset: { id: e.id, event: e.event } },
      whenCell(e.at_ms),
      cutCell(e.stream),
      el('td', { text: e.event.replace(/_/g, ' ') }),
      cutCell(e.actor.replace(/^token:/, '')),
      el('td', { class: 'wrap', text: e.reason }),
      el('td', {}, e.alert_id ? el('button', {
        type: 'button', class: 'link', text: `#${e.alert_id}`, onclick: () => openAlert(e.alert_id),
      }) : '')));
    $('audit').tBodies[0].replaceChildren(...rows);
  }

  async function olderAudit() {
    S.auditLimit = Math.min(S.auditLimit + AUDIT_PAGE, AUDIT_MAX);
    try {
      await refreshAudit();
    } catch (e) {
      if (!handled(e)) status(`Audit trail not loaded (${e.status}): ${e.message}`, true);
    }
  }

  // --- Keyboard -------------------------------------------------------------------------
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || $('app').hidden) return;
    if ($('confirm-dialog').open) return;
    const t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    const keys = {
      j: () => move(1),
      k: () => move(-1),
      o: () => S.selected && openAlert(S.selected),
      r: () => !$('reveal').hidden && !$('reveal').disabled && $('reveal').click(),
      c: () => act('claim'),
      f: () => act('confirm'),
      d: () => act('dismiss'),
      Escape: () => S.open && $('detail-close').click(),
      '/': () => $('state-filter').focus(),
    };
    const f = keys[ev.key];
    if (f) {
      ev.preventDefault();
      f();
    }
  });

  start();
})();
