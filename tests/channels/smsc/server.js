// A scriptable SMSC for OpenComms tests, on the npm `smpp` package's server.
//
// Usage: node server.js [--port 0] [--control 0] [--host 127.0.0.1] [--tls-key K --tls-cert C]
// Prints one JSON line {"smpp": port, "control": port} once both listen. The HTTP control
// port scripts its behaviour per test and reports what it saw:
//   GET  /stats            counters (submits, duplicates, outstanding high-water mark, ...)
//   GET  /submits          the submit_sm PDUs received (decoded), when keepSubmits > 0
//   POST /config {..}      merge into the script (see DEFAULTS below)
//   POST /reset            counters, queues and script back to their start
//   POST /inbound {..}     a mobile-originated message: {from, to, text, encoding, concat, reverse, only,
//                          systemId: only to ESMEs bound with this system_id}
//   POST /receipt {..}     send a withheld receipt (receiptStat 'NONE'): {id, stat, err}
//   POST /data_sm          send a data_sm, which an ESME without data_sm answers generic_nack
//   POST /drop             destroy every connection (no unbind)
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

const DEFAULTS = {
  password: 'secret', // bind with another password is refused with ESME_RINVPASWD
  bindStatus: 0, // a non-zero command_status answers every bind
  throttleEvery: 0, // every Nth submit_sm is answered ESME_RTHROTTLED
  throttleCount: 0, // the next N submit_sm are answered ESME_RTHROTTLED
  submitStatus: {}, // destination -> command_status for its submit_sm
  genericNack: {}, // destination -> command_status of a generic_nack answering its submit_sm
  respondDelayMs: 0, // submit_sm_resp waits this long
  dropAfter: 0, // the Nth submit_sm from now destroys its connection, unanswered
  receipts: 'after', // 'after' | 'before' (the receipt precedes submit_sm_resp) | 'none'
  receiptFormat: 'text', // 'text' (id:... stat:...) | 'tlv' (receipted_message_id, message_state)
  receiptDelayMs: 0,
  receiptStat: {}, // destination (or destination#part) -> [stat, err] (default ['DELIVRD', 0]);
  // stat 'NONE' withholds the receipt until POST /receipt {id, stat, err} sends it
  nackRedelayMs: 100, // a deliver_sm answered non-zero is sent again after this
  loseDeliverResps: 0, // the next N deliver_sm_resp are ignored, as if lost (redelivered after a reconnect)
  keepSubmits: 2000, // how many decoded submits GET /submits can show
};

const STATES = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

// The script given at start (SMSC_SCRIPT, JSON) is what /reset goes back to.
const BASE = { ...DEFAULTS, ...JSON.parse(process.env.SMSC_SCRIPT || '{}') };
let script = { ...BASE };
let stats;
let seen; // duplicate detection: destination | data_coding | part | payload
let submits;
// Message ids stay unique across resets and SMSC processes: tests share a database.
const ID_PREFIX = require('crypto').randomBytes(3).toString('hex').toUpperCase();
let nextId = 1;
let redeliver; // deliver_sm options waiting for a receiver (after a drop or a nack)
let withheld; // message id -> {pdu, session}: receipts held back until POST /receipt
const sessions = new Set();

// What a finished test left in flight (on a connection still closing, or a nack's redelivery
// timer) must not reach the next test's ESMEs: each delivery carries the epoch it was made in.
let epoch = 0;

function reset() {
  epoch += 1;
  for (const session of sessions) session.inflightDeliver.clear();
  script = { ...BASE };
  stats = {
    binds: 0, bindRefused: 0, submits: 0, unique: 0, duplicates: 0, throttled: 0, rejected: 0,
    maxOutstanding: 0, drops: 0, deliverSent: 0, deliverAcked: 0, deliverNacked: 0,
    redelivered: 0, deliverLost: 0, unbinds: 0, enquireLinks: 0, genericNacksReceived: 0,
  };
  seen = new Set();
  submits = [];
  redeliver = [];
  withheld = new Map();
}
reset();

function unacked() {
  let pending = redeliver.length;
  for (const s of sessions) pending += s.inflightDeliver.size;
  return pending;
}

// `systemId`: only the ESMEs bound with it (a test's own, not one another test left open).
function receivers(systemId) {
  return [...sessions].filter((s) => s.bound && s.bindType !== 'transmitter' && !s.dead
    && (systemId === undefined || s.systemId === systemId));
}

function boundBy() {
  const counts = {};
  for (const s of receivers()) counts[s.systemId] = (counts[s.systemId] || 0) + 1;
  return counts;
}

// Sends a deliver_sm and keeps it until its answer is ESME_ROK; a connection that dies first
// puts it back in the redelivery queue, for the next receiver that binds.
function deliver(session, options, again) {
  const key = options._key;
  session.inflightDeliver.set(key, options);
  stats.deliverSent += 1;
  if (again) stats.redelivered += 1;
  const { _key, _systemId, _epoch, ...fields } = options;
  session.deliver_sm(fields, (resp) => {
    if (!session.inflightDeliver.has(key)) return; // answered already, or a finished test's
    if (script.loseDeliverResps > 0) {
      script.loseDeliverResps -= 1;
      stats.deliverLost += 1;
      return; // still in flight: the connection's end sends it again
    }
    session.inflightDeliver.delete(key);
    if (resp.command_status === 0) {
      stats.deliverAcked += 1;
      return;
    }
    stats.deliverNacked += 1;
    setTimeout(() => route(options, true), script.nackRedelayMs);
  });
}

function route(options, again) {
  if (options._epoch !== epoch) return; // a finished test's
  const [target] = receivers(options._systemId);
  if (target) deliver(target, options, again);
  else redeliver.push(options);
}

let deliveryKey = 0;
function statOf(sm) {
  const part = partOf(sm).split('/')[0];
  return script.receiptStat[`${sm.destination_addr}#${part}`]
    || script.receiptStat[sm.destination_addr] || ['DELIVRD', 0];
}

function receiptFor(sm, id, chosen) {
  const [stat, err] = chosen || statOf(sm);
  const options = {
    _key: ++deliveryKey,
    _epoch: epoch,
    source_addr: sm.destination_addr, source_addr_ton: sm.dest_addr_ton, source_addr_npi: sm.dest_addr_npi,
    destination_addr: sm.source_addr, dest_addr_ton: sm.source_addr_ton, dest_addr_npi: sm.source_addr_npi,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
  };
  if (script.receiptFormat === 'tlv') {
    options.receipted_message_id = id;
    options.message_state = STATES[stat];
    // network type 1 (GSM), then the 2-octet error: the MAP error of the text form's err
    if (err) options.network_error_code = Buffer.from([1, (err >> 8) & 0xff, err & 0xff]);
    options.short_message = Buffer.alloc(0);
  } else {
    const e = String(err).padStart(3, '0');
    options.short_message = Buffer.from(
      `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:2612031200 ` +
      `done date:2612031200 stat:${stat} err:${e} text:x`, 'latin1');
  }
  return options;
}

function partOf(sm) {
  const message = sm.short_message || {};
  for (const ie of message.udh || []) {
    if (ie[0] === 0x00 && ie.length >= 5) return `${ie[4]}/${ie[3]}`;
    if (ie[0] === 0x08 && ie.length >= 6) return `${ie[5]}/${ie[4]}`;
  }
  if (sm.sar_segment_seqnum) return `${sm.sar_segment_seqnum}/${sm.sar_total_segments}`;
  return '1/1';
}

function onSubmit(session, pdu) {
  stats.submits += 1;
  session.outstanding += 1;
  stats.maxOutstanding = Math.max(stats.maxOutstanding, session.outstanding);
  if (script.dropAfter > 0) {
    script.dropAfter -= 1;
    if (script.dropAfter === 0) {
      stats.drops += 1;
      session.destroy();
      return;
    }
  }
  if (script.genericNack[pdu.destination_addr]) {
    session.outstanding -= 1;
    session.send(new smpp.PDU('generic_nack', {
      sequence_number: pdu.sequence_number, command_status: script.genericNack[pdu.destination_addr],
    }));
    return;
  }
  const message = pdu.short_message || {};
  const text = typeof message.message === 'string' ? message.message
    : Buffer.isBuffer(message.message) ? message.message.toString('hex') : String(message.message);
  const key = `${pdu.destination_addr}|${pdu.data_coding}|${partOf(pdu)}|${text}`;
  let status = script.submitStatus[pdu.destination_addr] || 0;
  if (!status && script.throttleCount > 0) {
    script.throttleCount -= 1;
    status = smpp.ESME_RTHROTTLED;
  } else if (!status && script.throttleEvery > 0 && stats.submits % script.throttleEvery === 0) {
    status = smpp.ESME_RTHROTTLED;
  }
  const respond = (fields) => {
    setTimeoutMaybe(script.respondDelayMs, () => {
      if (session.dead) return;
      session.outstanding -= 1;
      session.send(pdu.response(fields));
    });
  };
  if (status) {
    if (status === smpp.ESME_RTHROTTLED) stats.throttled += 1;
    else stats.rejected += 1;
    respond({ command_status: status });
    return;
  }
  if (seen.has(key)) stats.duplicates += 1;
  else {
    seen.add(key);
    stats.unique += 1;
  }
  const id = ID_PREFIX + (nextId++).toString(16).toUpperCase().padStart(8, '0');
  if (submits.length < script.keepSubmits) {
    submits.push({
      id, source: pdu.source_addr, destination: pdu.destination_addr, dataCoding: pdu.data_coding,
      esmClass: pdu.esm_class, part: partOf(pdu), text, registeredDelivery: pdu.registered_delivery,
      sourceTon: pdu.source_addr_ton, destTon: pdu.dest_addr_ton,
    });
  }
  let wantsReceipt = (pdu.registered_delivery & 0x03) !== 0 && script.receipts !== 'none';
  if (wantsReceipt && statOf(pdu)[0] === 'NONE') {
    withheld.set(id, { pdu, session });
    wantsReceipt = false;
  }
  if (wantsReceipt && script.receipts === 'before') {
    const receipt = receiptFor(pdu, id);
    if (session.bindType === 'transceiver') deliver(session, receipt, false);
    else route(receipt, false);
  }
  respond({ message_id: id });
  if (wantsReceipt && script.receipts === 'after') {
    setTimeoutMaybe(script.receiptDelayMs, () => {
      const receipt = receiptFor(pdu, id);
      if (session.bindType === 'transceiver' && !session.dead) deliver(session, receipt, false);
      else route(receipt, false);
    });
  }
}

function setTimeoutMaybe(ms, fn) {
  if (ms > 0) setTimeout(fn, ms);
  else fn();
}

function onBind(session, pdu, bindType) {
  session.pause();
  const status = script.bindStatus || (pdu.password !== script.password ? smpp.ESME_RINVPASWD : 0);
  if (status) {
    stats.bindRefused += 1;
    session.send(pdu.response({ command_status: status }));
    session.resume();
    return;
  }
  stats.binds += 1;
  session.bound = true;
  session.bindType = bindType;
  session.systemId = pdu.system_id;
  session.send(pdu.response({ system_id: 'OPENCOMMS-TEST-SMSC' }));
  session.resume();
  if (bindType !== 'transmitter') {
    const queued = redeliver;
    redeliver = queued.filter((o) => o._systemId !== undefined && o._systemId !== pdu.system_id);
    for (const options of queued) if (!redeliver.includes(options)) deliver(session, options, true);
  }
}

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

// --tls-key and --tls-cert (PEM files) make it an SMPP-over-TLS server.
const tlsOptions = arg('tls-key') ? { key: fs.readFileSync(arg('tls-key')), cert: fs.readFileSync(arg('tls-cert')) } : {};

// Everything a connection sends within one turn of the event loop (the answers to a burst of
// submit_sm and their receipts) leaves in one socket write: node's per-PDU write would
// otherwise make the SMSC, not the ESME under test, the ceiling of the benchmark.
function batchWrites(session) {
  const send = session.send.bind(session);
  session.send = (...args) => {
    if (!session.corked) {
      session.corked = true;
      session.socket.cork();
      process.nextTick(() => {
        session.corked = false;
        session.socket.uncork();
      });
    }
    return send(...args);
  };
}

const server = smpp.createServer(tlsOptions, (session) => {
  sessions.add(session);
  batchWrites(session);
  session.outstanding = 0;
  session.inflightDeliver = new Map();
  session.on('bind_transceiver', (pdu) => onBind(session, pdu, 'transceiver'));
  session.on('bind_transmitter', (pdu) => onBind(session, pdu, 'transmitter'));
  session.on('bind_receiver', (pdu) => onBind(session, pdu, 'receiver'));
  session.on('submit_sm', (pdu) => {
    if (!session.bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    onSubmit(session, pdu);
  });
  session.on('enquire_link', (pdu) => {
    stats.enquireLinks += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    stats.unbinds += 1;
    session.send(pdu.response());
    session.close();
  });
  session.on('unknown', (pdu) => session.send(pdu.response()));
  session.on('error', () => {});
  session.on('close', () => {
    session.dead = true;
    sessions.delete(session);
    // What this connection was given but never answered goes to the next receiver.
    for (const options of session.inflightDeliver.values()) route(options, true);
    session.inflightDeliver.clear();
  });
});

function inbound(body) {
  const encoding = body.encoding || 'gsm';
  const raw = encoding === 'ucs2'
    ? Buffer.from(body.text, 'utf16le').swap16()
    : smpp.encodings.ASCII.encode(body.text);
  const single = encoding === 'ucs2' ? 140 : 160;
  const step = encoding === 'ucs2' ? 134 : 153;
  const parts = [];
  if (raw.length <= single) parts.push(raw);
  else for (let at = 0; at < raw.length; at += step) parts.push(raw.subarray(at, at + step));
  const reference = body.reference || Math.floor(Math.random() * 255) + 1;
  let order = parts.map((part, index) => index);
  if (body.reverse) order.reverse();
  if (body.only) order = order.filter((index) => body.only.includes(index + 1));
  for (const index of order) {
    const options = {
      _key: ++deliveryKey,
      _systemId: body.systemId,
      _epoch: epoch,
      source_addr: body.from.replace(/^\+/, ''), source_addr_ton: 1, source_addr_npi: 1,
      destination_addr: body.to.replace(/^\+/, ''), dest_addr_ton: 1, dest_addr_npi: 1,
      data_coding: encoding === 'ucs2' ? 0x08 : 0x00,
      esm_class: 0,
      short_message: parts[index],
    };
    if (parts.length > 1 && body.concat === 'sar') {
      options.sar_msg_ref_num = reference;
      options.sar_total_segments = parts.length;
      options.sar_segment_seqnum = index + 1;
    } else if (parts.length > 1) {
      options.esm_class = smpp.ESM_CLASS.UDH_INDICATOR;
      options.short_message = Buffer.concat([
        Buffer.from([5, 0, 3, reference, parts.length, index + 1]), parts[index]]);
    }
    route(options, false);
  }
  return { parts: parts.length };
}

function reply(res, code, value) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

const control = http.createServer((req, res) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => {
    let body = {};
    try {
      body = data ? JSON.parse(data) : {};
    } catch (e) {
      reply(res, 400, { error: String(e) });
      return;
    }
    const path = `${req.method} ${req.url}`;
    if (path === 'GET /stats') {
      reply(res, 200, { ...stats, unacked: unacked(), sessions: sessions.size, bound: receivers().length, boundBy: boundBy() });
    } else if (path === 'GET /submits') reply(res, 200, submits);
    else if (path === 'POST /config') {
      script = { ...script, ...body };
      reply(res, 200, script);
    } else if (path === 'POST /reset') {
      reset();
      reply(res, 200, {});
    } else if (path === 'POST /inbound') reply(res, 200, inbound(body));
    else if (path === 'POST /receipt') {
      // A withheld receipt, now: {id, stat, err}
      const held = withheld.get(body.id);
      if (!held) {
        reply(res, 404, { error: `no withheld receipt for ${body.id}` });
        return;
      }
      withheld.delete(body.id);
      const receipt = receiptFor(held.pdu, body.id, [body.stat || 'DELIVRD', body.err || 0]);
      if (held.session.bindType === 'transceiver' && !held.session.dead) deliver(held.session, receipt, false);
      else route(receipt, false);
      reply(res, 200, {});
    }
    else if (path === 'POST /data_sm') {
      // A request the ESME does not serve: it must answer generic_nack.
      const [target] = receivers();
      target.data_sm({ source_addr: '447700900123', destination_addr: '15005550006' }, (resp) => {
        if (resp.command_id === 0x80000000) stats.genericNacksReceived += 1;
      });
      reply(res, 200, {});
    } else if (path === 'POST /drop') {
      const count = sessions.size;
      for (const s of sessions) s.destroy();
      reply(res, 200, { dropped: count });
    } else reply(res, 404, { error: path });
  });
});

const host = arg('host', '127.0.0.1');
server.listen(Number(arg('port', 0)), host, () => {
  control.listen(Number(arg('control', 0)), host, () => {
    process.stdout.write(`${JSON.stringify({ smpp: server.address().port, control: control.address().port })}\n`);
  });
});
process.on('SIGTERM', () => process.exit(0));
