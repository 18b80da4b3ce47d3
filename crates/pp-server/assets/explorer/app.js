// pp-ledger explorer: reads this node's HTTP API and follows GET /events.
//
// Every value from the API reaches the page as text (textContent) or as a URL query parameter
// built by URLSearchParams, never as markup. Lookups are driven by the query string
// (?block=3, ?block=<hash>, ?tx=<id>, ?account=<key>, ?q=<anything>), so each result has a link;
// ?live=0 turns the event stream off (the page then polls /status).
'use strict';

(() => {
  const MAX_BLOCKS = 10; // rows in "Latest blocks"
  const MAX_TXS = 10; // ids in "Transactions admitted"
  const STATUS_EVERY_MS = 2000; // /status polling (slot, epoch, mempool; the tip when not live)
  const PEERS_EVERY_MS = 10000; // /peers polling (peer events refresh it at once too)
  const RETRY_LIVE_MS = 15000; // a refused or closed event stream is retried after this
  const HEX64 = /^[0-9a-fA-F]{64}$/;
  const INDEX = /^[0-9]{1,19}$/;

  const $ = (id) => document.getElementById(id);
  let shownHeight = null;
  let live = false;

  // ---- helpers -------------------------------------------------------------------------------

  async function api(path) {
    const res = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const e = body && body.error;
      const err = new Error(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function set(id, value) {
    const e = $(id);
    const text = value === undefined || value === null ? '–' : String(value);
    if (e && e.textContent !== text) e.textContent = text;
  }

  function short(h) {
    const s = String(h);
    return s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s;
  }

  // A link to a lookup of this page; plain clicks stay on the page (history entry, no reload).
  function lookupLink(kind, value, text) {
    const params = { [kind]: String(value) };
    const a = el('a', text === undefined ? short(value) : text);
    a.href = `/?${new URLSearchParams(params)}`;
    if (kind !== 'block' || HEX64.test(String(value))) a.title = String(value);
    a.addEventListener('click', (ev) => {
      if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
      ev.preventDefault();
      navigate(params);
    });
    return a;
  }

  function fields(pairs) {
    const dl = el('dl', null, 'fields');
    for (const [name, value, id] of pairs) {
      const dd = el('dd');
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value === null || value === undefined ? '–' : String(value);
      if (id) dd.id = id;
      if (typeof value === 'string' && HEX64.test(value)) dd.className = 'hash';
      dl.append(el('dt', name), dd);
    }
    return dl;
  }

  function time(ms) {
    const d = new Date(Number(ms));
    return Number.isFinite(d.getTime()) ? `${d.toISOString()} (${ms})` : String(ms);
  }

  function setLive(state, text) {
    const e = $('live-state');
    e.dataset.state = state;
    e.textContent = text;
  }

  // ---- chain summary and latest blocks -------------------------------------------------------

  function showTip(height, hash) {
    shownHeight = height;
    set('height', height);
    set('tip-hash', hash);
  }

  function blockRow(index, hash, slot, txCount) {
    const tr = el('tr');
    tr.dataset.index = String(index);
    const idx = el('td');
    idx.append(lookupLink('block', index, String(index)));
    const h = el('td', null, 'hash');
    h.append(lookupLink('block', hash));
    tr.append(idx, h, el('td', slot), el('td', txCount));
    return tr;
  }

  // A block joined the best chain: rows at or above its index belonged to the branch it
  // replaces (or are stale), so they go; it becomes the top row.
  function addBlockRow(index, hash, slot, txCount) {
    const body = $('blocks');
    for (const tr of Array.from(body.rows)) {
      if (Number(tr.dataset.index) >= index) tr.remove();
    }
    body.prepend(blockRow(index, hash, slot, txCount));
    while (body.rows.length > MAX_BLOCKS) body.deleteRow(-1);
  }

  async function loadBlocks(height) {
    const from = Math.max(0, height - MAX_BLOCKS + 1);
    const r = await api(`/blocks?from=${from}&count=${MAX_BLOCKS}`);
    const rows = (r.blocks || [])
      .slice()
      .reverse()
      .map((b) => blockRow(b.header.index, b.hash, b.header.slot, b.transactions.length));
    $('blocks').replaceChildren(...rows);
  }

  async function refreshStatus() {
    let s;
    try {
      s = await api('/status');
    } catch (e) {
      setLive('down', `node unreachable (${e.message})`);
      return;
    }
    set('network', s.network);
    set('node-id', s.node_id);
    set('slot', s.slot);
    set('epoch', s.epoch);
    set('peers', s.peers);
    set('mempool', s.pending_transactions);
    if (!live) setLive('polling', 'polling /status');
    if (s.height !== shownHeight) {
      showTip(s.height, s.tip_hash);
      try {
        await loadBlocks(s.height);
      } catch (_) {
        // The next poll tries again.
      }
    }
    document.body.dataset.loaded = 'true';
  }

  // ---- peers ---------------------------------------------------------------------------------

  async function refreshPeers() {
    let peers;
    try {
      peers = (await api('/peers')).peers || [];
    } catch (_) {
      return;
    }
    const rows = peers.map((p) => {
      const tr = el('tr');
      const key = el('td', short(p.key), 'hash');
      key.title = String(p.key);
      tr.append(el('td', p.node_id), key, el('td', p.addr), el('td', p.direction),
        el('td', p.tip_index), el('td', p.score));
      return tr;
    });
    $('peer-list').replaceChildren(...rows);
    $('peers-empty').hidden = rows.length > 0;
    $('peer-table').hidden = rows.length === 0;
    set('peers', rows.length);
  }

  // ---- live events ---------------------------------------------------------------------------

  function parse(msg) {
    try {
      return JSON.parse(msg.data);
    } catch (_) {
      return null;
    }
  }

  function onTx(ev) {
    if (!ev || !HEX64.test(String(ev.id))) return;
    const li = el('li', null, 'hash');
    li.append(lookupLink('tx', ev.id, String(ev.id)));
    const list = $('txs');
    list.prepend(li);
    while (list.children.length > MAX_TXS) list.lastElementChild.remove();
    $('txs-empty').hidden = true;
  }

  function startLive() {
    if (typeof EventSource !== 'function') return;
    const es = new EventSource('/events');
    es.addEventListener('open', () => {
      live = true;
      setLive('live', 'live');
      // Anything missed while the stream was down is read again.
      shownHeight = null;
      refreshStatus();
      refreshPeers();
    });
    es.addEventListener('block', (m) => {
      const b = parse(m);
      if (!b) return;
      showTip(b.index, b.hash);
      addBlockRow(b.index, b.hash, b.slot, b.tx_count);
    });
    es.addEventListener('tx', (m) => onTx(parse(m)));
    es.addEventListener('peer_up', refreshPeers);
    es.addEventListener('peer_down', refreshPeers);
    es.addEventListener('lagged', () => {
      shownHeight = null;
      refreshStatus();
      refreshPeers();
    });
    es.addEventListener('error', () => {
      live = false;
      if (es.readyState === EventSource.CLOSED) {
        // Refused (e.g. 503: too many listeners) or gone: poll, and try again later.
        setLive('polling', 'polling /status (event stream unavailable)');
        setTimeout(startLive, RETRY_LIVE_MS);
      } else {
        setLive('polling', 'reconnecting to /events…');
      }
    });
  }

  // ---- lookups -------------------------------------------------------------------------------

  function showError(message) {
    const p = el('p', message, 'error');
    p.id = 'lookup-error';
    $('lookup-result').replaceChildren(p);
  }

  function showBlock(b) {
    const h = b.header;
    const parts = [
      el('h3', `Block ${h.index}`),
      fields([
        ['Hash', b.hash, 'result-hash'],
        ['Index', h.index, 'result-index'],
        ['Slot', h.slot],
        ['Producer', lookupLink('account', h.producer)],
        ['Previous', h.index > 0 ? lookupLink('block', h.prev_hash) : 'none (genesis)'],
        ['Time', time(h.timestamp)],
        ['Transactions', b.transactions.length],
        ['Transaction root', h.tx_root],
        ['Difficulty', h.difficulty],
        ['Nonce', h.nonce],
        ['Version', h.version],
        ['Signature', short(b.signature)],
      ]),
    ];
    if (b.on_best_chain === false) parts.push(el('p', 'Not on the best chain (a side chain).', 'muted'));
    if (b.transactions.length > 0) {
      const table = el('table');
      const head = el('tr');
      for (const c of ['Type', 'From', 'To', 'Amount', 'Fee', 'Nonce']) {
        const th = el('th', c);
        th.scope = 'col';
        head.append(th);
      }
      table.append(el('thead'));
      table.tHead.append(head);
      const body = el('tbody');
      for (const t of b.transactions) {
        const tr = el('tr');
        const from = el('td');
        from.append(lookupLink('account', t.from));
        const to = el('td');
        if (t.to) to.append(lookupLink('account', t.to));
        else to.textContent = t.stakeholder_id ? `stake as ${t.stakeholder_id}` : '–';
        tr.append(el('td', t.type), from, to, el('td', t.amount), el('td', t.fee), el('td', t.nonce));
        body.append(tr);
      }
      table.append(body);
      parts.push(el('h3', 'Transactions'), table);
    }
    $('lookup-result').replaceChildren(...parts);
  }

  function showTx(t) {
    const rows = [
      ['Id', t.id, 'result-tx'],
      ['Status', t.status, 'result-status'],
    ];
    if (t.block) rows.push(['Block', lookupLink('block', t.block.index, `${t.block.index} (${short(t.block.hash)})`)]);
    if (t.reason) rows.push(['Reason', `${t.reason}: ${t.message}`]);
    $('lookup-result').replaceChildren(el('h3', 'Transaction'), fields(rows));
  }

  function showAccount(a) {
    $('lookup-result').replaceChildren(
      el('h3', 'Account'),
      fields([
        ['Account', a.account, 'result-account'],
        ['Balance', a.balance, 'result-balance'],
        ['Nonce', a.nonce],
        ['Pending nonce', a.pending_nonce],
        ['Stake', a.stake],
        ['Stakeholder id', a.stakeholder_id],
      ]),
    );
  }

  // Whatever a 64-hex string names: a block, else a transaction, else an account.
  async function lookupHash(h) {
    const tries = [
      [`/blocks/hash/${h}`, showBlock],
      [`/transactions/${h}`, showTx],
      [`/accounts/${h}`, showAccount],
    ];
    for (const [path, show] of tries) {
      try {
        show(await api(path));
        return;
      } catch (e) {
        if (e.status !== 404) throw e;
      }
    }
    showError(`No block, transaction or account ${h} on this node.`);
  }

  async function lookup(params) {
    const block = params.get('block');
    const tx = params.get('tx');
    const account = params.get('account');
    const q = (params.get('q') || '').trim();
    const value = (block || tx || account || q || '').trim();
    if (!value) {
      $('lookup-result').replaceChildren();
      return;
    }
    $('q').value = value;
    try {
      if (INDEX.test(value) && !tx && !account) {
        showBlock(await api(`/blocks/${encodeURIComponent(value)}`));
      } else if (!HEX64.test(value)) {
        showError('Enter a block index (a number), or 64 hex digits: a block hash, a transaction id or an account.');
      } else if (block) {
        showBlock(await api(`/blocks/hash/${encodeURIComponent(value)}`));
      } else if (tx) {
        showTx(await api(`/transactions/${encodeURIComponent(value)}`));
      } else if (account) {
        showAccount(await api(`/accounts/${encodeURIComponent(value)}`));
      } else {
        await lookupHash(encodeURIComponent(value.toLowerCase()));
      }
    } catch (e) {
      showError(e.message);
    }
  }

  function navigate(params) {
    history.pushState(null, '', `/?${new URLSearchParams(params)}`);
    lookup(new URLSearchParams(location.search));
  }

  // ---- start ---------------------------------------------------------------------------------

  function start() {
    $('lookup').addEventListener('submit', (ev) => {
      ev.preventDefault();
      navigate({ q: $('q').value.trim() });
    });
    window.addEventListener('popstate', () => lookup(new URLSearchParams(location.search)));
    lookup(new URLSearchParams(location.search));
    refreshStatus();
    refreshPeers();
    // ?live=0: poll only (for a proxy that buffers event streams, or a headless browser that
    // waits for every request to finish).
    if (new URLSearchParams(location.search).get('live') !== '0') startLive();
    setInterval(refreshStatus, STATUS_EVERY_MS);
    setInterval(refreshPeers, PEERS_EVERY_MS);
  }

  start();
})();
