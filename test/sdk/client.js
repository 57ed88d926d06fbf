#!/usr/bin/env node
// Drives the official, unmodified LicenseSpring Node SDK (@licensespring/node-sdk,
// pinned in package.json) against a License API server, for the Go integration tests.
//
// Input (stdin, one JSON document):
//   {
//     "config": {
//       "apiPath": "http://127.0.0.1:PORT/api/v4",   // required
//       "apiKey": "...", "sharedKey": "...",         // required (HMAC auth)
//       "publicKey": "-----BEGIN PUBLIC KEY-----...",// required (response signatures)
//       "productCode": "cad",                        // required for target "manager" ("product" is an alias)
//       "appName": "t", "appVersion": "1",           // optional, defaults below
//       "hardwareID": "hw-1",                        // optional; without it the SDK's native generator is used
//       "filePath": "/tmp/x", "filename": "License", // optional; default: a fresh temp dir, removed at exit
//       "fileKey": "...", "gracePeriod": 24, "hardwareIDMethod": 0, "logLevel": "off",
//       "callTimeoutMs": 30000                       // optional, harness-only: per-call timeout
//     },
//     "calls": [
//       {"target": "api",      "method": "addFeatureConsumption", "args": [{...}]},
//       {"target": "manager",  "method": "activateLicense",       "args": [{"license_key": "..."}]},
//       {"target": "manager",  "method": "loadLicense"},
//       {"target": "result:2", "method": "check"},               // method of the value call 2 returned
//       {"target": "result:2", "method": "licenseKey"}           // non-function member: its value is read
//     ]
//   }
//   Any argument may be {"$result": N}: it is replaced by the raw value call N returned.
//   Any other config key is passed through to the SDK constructors unchanged.
//
// Output (stdout, one JSON document):
//   {"results": [{"ok": true, "value": ...} | {"ok": false, "error": {"status", "code", "message", ...}}],
//    "meta": {"sdkVersion", "filePath", "filename"}}
//   Errors the SDK throws as plain objects (API errors are the server's response body;
//   signature failures are {status:400, code:'signature_v2_mismatch'} or
//   {status:401, code:'license_signature_invalid'}) are passed through. Thrown Error
//   instances become {code: "exception", name, message}.
//
// Exit status: 0 when the script ran (whatever the results), 2 on bad input,
// 1 on any other harness failure. Nothing but the one JSON document is written to stdout.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');

// Keep stdout for the result document only: anything the SDK or its dependencies
// print through console goes to stderr.
const writeStdout = process.stdout.write.bind(process.stdout);
const toStderr = (...args) => { process.stderr.write(util.format(...args) + '\n'); };
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.trace = toStderr;

const HARNESS_KEYS = new Set(['callTimeoutMs', 'product']);
const DEFAULT_TIMEOUT_MS = 30000;

class InputError extends Error {}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function parseScript(text) {
  let script;
  try {
    script = JSON.parse(text);
  } catch (e) {
    throw new InputError(`stdin is not JSON: ${e.message}`);
  }
  if (!isPlainObject(script)) throw new InputError('script must be a JSON object');
  if (!isPlainObject(script.config)) throw new InputError('script.config must be an object');
  if (!Array.isArray(script.calls)) throw new InputError('script.calls must be an array');
  const cfg = script.config;
  for (const key of ['apiPath', 'apiKey', 'sharedKey', 'publicKey']) {
    if (typeof cfg[key] !== 'string' || cfg[key] === '') {
      throw new InputError(`config.${key} must be a non-empty string`);
    }
  }
  script.calls.forEach((call, i) => {
    if (!isPlainObject(call)) throw new InputError(`calls[${i}] must be an object`);
    if (typeof call.method !== 'string' || call.method === '') {
      throw new InputError(`calls[${i}].method must be a non-empty string`);
    }
    if (call.args !== undefined && !Array.isArray(call.args)) {
      throw new InputError(`calls[${i}].args must be an array`);
    }
    const ref = parseTarget(call.target, i);
    if (ref.kind === 'manager' && !(cfg.productCode || cfg.product)) {
      throw new InputError(`calls[${i}] targets the manager: config.productCode is required`);
    }
    checkResultRefs(call.args, i, `calls[${i}].args`);
  });
  return script;
}

function parseTarget(target, index) {
  if (target === 'api' || target === 'manager') return { kind: target };
  const m = typeof target === 'string' && /^result:(\d+)$/.exec(target);
  if (!m) throw new InputError(`calls[${index}].target must be "api", "manager" or "result:N"`);
  const n = Number(m[1]);
  if (n >= index) throw new InputError(`calls[${index}].target refers to call ${n}, which has not run yet`);
  return { kind: 'result', index: n };
}

function checkResultRefs(value, index, where) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkResultRefs(v, index, `${where}[${i}]`));
  } else if (isPlainObject(value)) {
    if (isResultRef(value)) {
      const n = value.$result;
      if (!Number.isInteger(n) || n < 0 || n >= index) {
        throw new InputError(`${where} refers to call ${n}, which has not run yet`);
      }
      return;
    }
    for (const [k, v] of Object.entries(value)) checkResultRefs(v, index, `${where}.${k}`);
  }
}

function isResultRef(value) {
  return isPlainObject(value) && Object.keys(value).length === 1 && '$result' in value;
}

function isPlainObject(v) {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------- serialisation

// Getters of License that change state when read; they are not read when a
// License is serialised (call them explicitly as a method/member if needed).
const MUTATING_GETTERS = new Set(['isValidityPeriodExpired', 'isGracePeriod', 'currentLicenseData']);

function toJSONValue(value, seen = new WeakSet()) {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return { __buffer: value.toString('base64') };
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => { const j = toJSONValue(v, seen); return j === undefined ? null : j; });
    if (isPlainObject(value)) return plainToJSON(value, seen);
    return instanceToJSON(value, seen);
  } finally {
    seen.delete(value);
  }
}

function plainToJSON(obj, seen) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    const j = toJSONValue(v, seen);
    if (j !== undefined) out[k] = j;
  }
  return out;
}

function instanceToJSON(obj, seen) {
  const className = (obj.constructor && obj.constructor.name) || 'Object';
  // LicenseData#toJSON returns a JSON *string* (what the SDK stores in its license file).
  if (className === 'LicenseData' && typeof obj.toJSON === 'function') {
    return { __class: className, ...JSON.parse(obj.toJSON()) };
  }
  if (className === 'License') return licenseToJSON(obj, seen);
  if (typeof obj.toJSON === 'function') {
    try { return toJSONValue(obj.toJSON(), seen); } catch (_) { /* fall through */ }
  }
  // Generic class instance: its own data fields, without nested SDK machinery.
  const out = { __class: className };
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && !isPlainObject(v)) continue;
    const j = toJSONValue(v, seen);
    if (j !== undefined) out[k] = j;
  }
  return out;
}

function licenseToJSON(license, seen) {
  const out = { __class: 'License' };
  for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(Object.getPrototypeOf(license)))) {
    if (typeof desc.get !== 'function' || MUTATING_GETTERS.has(name)) continue;
    try {
      const j = toJSONValue(desc.get.call(license), seen);
      out[name] = j === undefined ? null : j;
    } catch (e) {
      out[name] = { __error: errorToJSON(e) };
    }
  }
  try {
    out.licenseData = JSON.parse(license.currentLicenseData.toJSON());
  } catch (e) {
    out.licenseData = { __error: errorToJSON(e) };
  }
  return out;
}

function errorToJSON(err) {
  if (err instanceof Error) {
    const out = { code: 'exception', name: err.name, message: err.message };
    if (err.code !== undefined) out.errorCode = toJSONValue(err.code);
    return out;
  }
  if (typeof err === 'object' && err !== null) {
    const j = toJSONValue(err);
    if (isPlainObject(j)) {
      // Keep status/code/message first; carry any other fields the server sent.
      const { status, code, message, ...rest } = j;
      return { status: status ?? null, code: code ?? null, message: message ?? null, ...rest };
    }
    return { code: 'exception', message: String(j) };
  }
  return { code: 'exception', message: String(err) };
}

// ---------------------------------------------------------------- running

function buildSdkConfig(cfg, filePath) {
  const sdkConfig = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (!HARNESS_KEYS.has(k)) sdkConfig[k] = v;
  }
  if (!sdkConfig.productCode && cfg.product) sdkConfig.productCode = cfg.product;
  sdkConfig.appName = sdkConfig.appName ?? 'caddy-license-api-sdk-tests';
  sdkConfig.appVersion = sdkConfig.appVersion ?? '0.0.0';
  sdkConfig.filePath = filePath;
  sdkConfig.filename = sdkConfig.filename ?? 'License';
  sdkConfig.fileKey = sdkConfig.fileKey ?? 'caddy-license-api-sdk-tests';
  sdkConfig.logLevel = sdkConfig.logLevel ?? 'off';
  return sdkConfig;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject({ status: null, code: 'harness_timeout', message: `${what} did not settle within ${ms} ms` }), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function resolveArgs(value, raw) {
  if (Array.isArray(value)) return value.map((v) => resolveArgs(v, raw));
  if (isResultRef(value)) return raw[value.$result];
  if (isPlainObject(value)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveArgs(v, raw);
    return out;
  }
  return value;
}

async function run(script) {
  const cfg = script.config;
  let ownTempDir = null;
  let filePath = cfg.filePath;
  if (!filePath) {
    ownTempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ls-sdk-'));
    filePath = ownTempDir;
  }
  const timeoutMs = Number.isInteger(cfg.callTimeoutMs) && cfg.callTimeoutMs > 0 ? cfg.callTimeoutMs : DEFAULT_TIMEOUT_MS;

  // Loaded only now, after console is redirected (the SDK reads its .env at load time).
  const sdk = require('@licensespring/node-sdk');
  const sdkVersion = require('@licensespring/node-sdk/package.json').version;
  // Only used when a script raises logLevel: keep the SDK's log file out of the cwd.
  sdk.Logger.logPath = path.join(filePath, 'node_sdk.log');

  const sdkConfig = buildSdkConfig(cfg, filePath);
  const instances = {};
  const factories = {
    api: () => new sdk.LicenseAPI(sdkConfig),
    manager: () => new sdk.LicenseManager(sdkConfig, sdkConfig.hardwareIDMethod ?? 0),
  };

  const raw = [];      // what each call returned (undefined for failed calls)
  const results = [];
  for (let i = 0; i < script.calls.length; i++) {
    const call = script.calls[i];
    const ref = parseTarget(call.target, i);
    try {
      let target;
      if (ref.kind === 'result') {
        if (!results[ref.index].ok) {
          throw { status: null, code: 'harness_target_failed', message: `call ${ref.index} failed, it has no value to use` };
        }
        target = raw[ref.index];
        if (typeof target !== 'object' || target === null) {
          throw { status: null, code: 'harness_bad_target', message: `call ${ref.index} returned ${target === null ? 'null' : typeof target}, not an object` };
        }
      } else {
        if (!instances[ref.kind]) instances[ref.kind] = factories[ref.kind]();
        target = instances[ref.kind];
      }
      const member = target[call.method];
      const args = resolveArgs(call.args ?? [], raw);
      let value;
      if (typeof member === 'function') {
        value = await withTimeout(Promise.resolve(member.apply(target, args)), timeoutMs, `${call.target}.${call.method}`);
      } else if (!(call.method in target)) {
        throw { status: null, code: 'harness_no_such_method', message: `${call.target} has no member ${call.method}` };
      } else if (args.length > 0) {
        throw { status: null, code: 'harness_not_a_method', message: `${call.target}.${call.method} is not a function but args were given` };
      } else {
        value = member;
      }
      raw[i] = value;
      const json = toJSONValue(value);
      results.push({ ok: true, value: json === undefined ? null : json });
    } catch (err) {
      raw[i] = undefined;
      results.push({ ok: false, error: errorToJSON(err) });
    }
  }

  for (const inst of Object.values(instances)) {
    // LicenseManager owns a Watchdog; make sure no interval keeps us alive.
    if (inst && inst.watchdog && typeof inst.watchdog.stopForLicense === 'function') {
      try { inst.watchdog.stopForLicense(); inst.watchdog.stopForFeatures(); } catch (_) { /* ignore */ }
    }
  }
  if (ownTempDir) fs.rmSync(ownTempDir, { recursive: true, force: true });

  return { results, meta: { sdkVersion, filePath: ownTempDir ? null : filePath, filename: sdkConfig.filename } };
}

function finish(doc, code) {
  if (doc === null) {
    process.exit(code);
  }
  writeStdout(JSON.stringify(doc) + '\n', () => process.exit(code));
}

async function main() {
  let script;
  try {
    script = parseScript(await readStdin());
  } catch (e) {
    process.stderr.write(`client.js: bad input: ${e.message}\n`);
    finish(null, 2);
    return;
  }
  try {
    finish(await run(script), 0);
  } catch (e) {
    process.stderr.write(`client.js: harness failure: ${e && e.stack ? e.stack : util.inspect(e)}\n`);
    finish(null, 1);
  }
}

main();
