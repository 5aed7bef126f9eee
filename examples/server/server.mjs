// An HTTP inference server for one GRU, on node:http alone.
//
//   node examples/server/server.mjs [--port 8080] [--host 127.0.0.1] [--batching on|off] [--max-batch 64] [--max-delay-ms 0]
//
// POST /predict runs one sequence: a JSON body {"x": [[...I], ...T rows], "h0"?: [[...H]]} answers
// {"output": [...H, the last step], "hidden": [[...H]], "steps": T}; a binary body (T·I little-endian
// float32) answers the hidden state as H little-endian float32. GET /stats and GET /health report.
// With batching on, concurrent requests share one batched forward (gru.batcher); off, each request
// runs its own gru.forwardAsync. The results are the same bits either way.
import http from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GRU, backendInfo, FastGruError, QueueFullError, ClosedError, AbortedError } from 'fastgru';

const MiB = 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A request error: its HTTP status and a message that names the field. */
class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

const describe = (value) => (typeof value === 'string' ? JSON.stringify(value).slice(0, 40) : String(value));

/**
 * The server for one model, not yet listening. Options: batching (default true), the model's
 * inputSize, hiddenSize and seed, the batcher's maxBatch, maxDelayMs and maxQueue, and maxBodyBytes.
 */
export function createServer({
  batching = true, inputSize = 128, hiddenSize = 256, seed = 1, maxBatch = 64, maxDelayMs = 0, maxQueue = 4096, maxBodyBytes = 8 * MiB,
} = {}) {
  if (typeof batching !== 'boolean') throw new TypeError(`batching: expected true or false, got ${describe(batching)}`);
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new TypeError(`maxBodyBytes: expected a positive integer, got ${describe(maxBodyBytes)}`);
  }
  const I = inputSize;
  const H = hiddenSize;
  const gru = new GRU({ inputSize, hiddenSize, seed });
  const batcher = batching ? gru.batcher({ maxBatch, maxDelayMs, maxQueue }) : null;
  // Without a batcher, the same counts a batcher keeps (its percentiles need its window).
  const counts = { inFlight: 0, requests: 0, completed: 0, failed: 0 };

  /** One sequence through the model: the batcher's next batch, or a forward of its own. */
  async function predict(x, h0, signal) {
    if (batcher) return batcher.run(x, h0, { signal });
    counts.requests++;
    counts.inFlight++;
    try {
      const result = await gru.forwardAsync(x, h0, { signal });
      counts.completed++;
      return result;
    } catch (error) {
      counts.failed++;
      throw error;
    } finally {
      counts.inFlight--;
    }
  }

  async function handlePredict(req, res, signal) {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json' && type !== 'application/octet-stream') {
      throw new HttpError(415, `content-type: expected application/json or application/octet-stream, got ${type || 'none'}`);
    }
    const body = await readBody(req, maxBodyBytes);
    const json = type === 'application/json';
    const { x, h0 } = json ? parseJson(body, I, H) : parseBinary(body, I);
    const { output, hidden } = await predict(x, h0, signal);
    const steps = x.shape[0];
    if (json) {
      sendJson(res, 200, {
        output: Array.from(output.data.subarray((steps - 1) * H, steps * H)),
        hidden: [Array.from(hidden.data)],
        steps,
      });
    } else {
      const bytes = toLittleEndian(hidden.data);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength });
      res.end(bytes);
    }
  }

  const server = http.createServer((req, res) => {
    // A client that goes away while its request waits takes it out of the queue.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    route(req, res, gone.signal).catch((error) => {
      if (gone.signal.aborted || res.headersSent) return;
      if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message }, error.headers);
      if (error instanceof QueueFullError) return sendJson(res, 503, { error: error.message }, { 'retry-after': '1' });
      if (error instanceof ClosedError) return sendJson(res, 503, { error: error.message }, { connection: 'close' });
      if (error instanceof AbortedError) return;
      // The body was checked, so the library should not reject it; if it does, its message names the argument.
      if (error instanceof FastGruError) return sendJson(res, 400, { error: error.message });
      console.error(error);
      sendJson(res, 500, { error: 'internal error' });
    });
  });

  async function route(req, res, signal) {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const methods = { '/predict': 'POST', '/stats': 'GET', '/health': 'GET' };
    if (!(path in methods)) throw new HttpError(404, `path: expected /predict, /stats or /health, got ${describe(path)}`);
    if (req.method !== methods[path]) {
      throw new HttpError(405, `method: ${path} takes ${methods[path]}, got ${req.method}`, { allow: methods[path] });
    }
    if (path === '/predict') return handlePredict(req, res, signal);
    if (path === '/health') return sendJson(res, 200, { ok: true, batching: batcher !== null, backend: backendInfo() });
    sendJson(res, 200, batcher ? { batching: true, ...batcher.stats() } : { batching: false, queued: 0, ...counts });
  }

  // A client that asks before sending (Expect: 100-continue, as curl does for large bodies) hears
  // 413 at once instead of sending a body that would be refused.
  server.on('checkContinue', (req, res) => {
    if (!(Number(req.headers['content-length']) > maxBodyBytes)) res.writeContinue();
    server.emit('request', req, res);
  });
  // A request that sends a partial body and stalls must not hold its socket for the default 300 s.
  server.requestTimeout = 30_000;
  server.on('close', () => {
    void batcher?.close();
  });
  return server;
}

/** The body as one Buffer; a 413 as soon as it passes the limit (declared or counted). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new HttpError(413, `body: expected at most ${limit} bytes`, { connection: 'close' });
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return reject(tooLarge());
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** {"x": [[...I] × T], "h0"?: [[...H]]} as tensors, every value checked to be a finite float32. */
function parseJson(body, I, H) {
  let value;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `body: expected JSON, ${error.message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'body: expected a JSON object {"x": [[...]], "h0"?: [[...]]}');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'x' && key !== 'h0') throw new HttpError(400, `body: unknown field ${describe(key)} (expected x and h0)`);
  }
  if (!Array.isArray(value.x) || value.x.length === 0) {
    throw new HttpError(400, `x: expected a non-empty array of rows of ${I} numbers, got ${Array.isArray(value.x) ? '[]' : describe(value.x)}`);
  }
  const x = { data: matrix(value.x, 'x', I), shape: [value.x.length, I] };
  if (value.h0 === undefined || value.h0 === null) return { x, h0: null };
  if (!Array.isArray(value.h0) || value.h0.length !== 1) {
    throw new HttpError(400, `h0: expected one row of ${H} numbers ([[...]]), got ${Array.isArray(value.h0) ? `${value.h0.length} rows` : describe(value.h0)}`);
  }
  return { x, h0: { data: matrix(value.h0, 'h0', H), shape: [1, H] } };
}

/** Rows of `width` numbers into one Float32Array; `name` for the messages. */
function matrix(rows, name, width) {
  const data = new Float32Array(rows.length * width);
  rows.forEach((row, t) => {
    if (!Array.isArray(row) || row.length !== width) {
      throw new HttpError(400, `${name}[${t}]: expected ${width} numbers, got ${Array.isArray(row) ? row.length : describe(row)}`);
    }
    for (let i = 0; i < width; i++) {
      const v = row[i];
      data[t * width + i] = v;
      // Checked after the conversion: 1e39 is a finite double but not a finite float32.
      if (typeof v !== 'number' || !Number.isFinite(data[t * width + i])) {
        throw new HttpError(400, `${name}[${t}][${i}]: expected a finite float32 number, got ${describe(v)}`);
      }
    }
  });
  return data;
}

/** T·I little-endian float32 values as an x of shape [T, I]. */
function parseBinary(body, I) {
  const rowBytes = 4 * I;
  if (body.length === 0 || body.length % rowBytes !== 0) {
    throw new HttpError(400, `body: expected T × ${I} float32 values (a positive multiple of ${rowBytes} bytes), got ${body.length} bytes`);
  }
  const data = new Float32Array(body.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(data.buffer).set(body);
  else for (let k = 0; k < data.length; k++) data[k] = body.readFloatLE(4 * k);
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k])) {
      throw new HttpError(400, `body: expected finite float32 values, got ${data[k]} at step ${Math.floor(k / I)}, column ${k % I}`);
    }
  }
  return { x: { data, shape: [data.length / I, I] }, h0: null };
}

function toLittleEndian(values) {
  if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const bytes = Buffer.alloc(values.byteLength);
  values.forEach((v, k) => bytes.writeFloatLE(v, 4 * k));
  return bytes;
}

function sendJson(res, status, value, headers = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const USAGE = 'usage: node examples/server/server.mjs [--port 8080] [--host 127.0.0.1] [--batching on|off] [--max-batch 64] [--max-delay-ms 0]';

/** A mistake on the command line: the message and the usage, exit 2 (the catch at the bottom). */
class UsageError extends Error {}

/** A number flag's value: an integer in [min, max] or, with integer false, a finite number in it. */
function numberFlag(values, name, { min, max = Infinity, integer = true }) {
  const text = values[name];
  const n = text.trim() === '' ? NaN : Number(text);
  if (!(integer ? Number.isSafeInteger(n) : Number.isFinite(n)) || n < min || n > max) {
    const range = max < Infinity ? `in [${min}, ${max}]` : `of at least ${min}`;
    throw new UsageError(`--${name}: expected ${integer ? 'an integer' : 'a number'} ${range}, got ${JSON.stringify(text)}`);
  }
  return n;
}

// The command line is parsed here with node:util alone, not with the repository's bin/args.mjs, so
// that a copy of this file runs with nothing but fastgru installed.
function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        batching: { type: 'string', default: 'on' },
        'max-batch': { type: 'string', default: '64' },
        'max-delay-ms': { type: 'string', default: '0' },
      },
    }));
  } catch (error) {
    // An unknown flag or one without its value (ERR_PARSE_ARGS_*) is a usage mistake, not a crash.
    if (String(error?.code).startsWith('ERR_PARSE_ARGS_')) throw new UsageError(error.message);
    throw error;
  }
  const port = numberFlag(values, 'port', { min: 0, max: 65535 });
  if (values.batching !== 'on' && values.batching !== 'off') throw new UsageError(`--batching: expected on or off, got ${JSON.stringify(values.batching)}`);
  if (values.host === '') throw new UsageError('--host: expected a host name or address, got ""');
  const server = createServer({
    batching: values.batching === 'on',
    maxBatch: numberFlag(values, 'max-batch', { min: 1 }),
    maxDelayMs: numberFlag(values, 'max-delay-ms', { min: 0, integer: false }),
  });
  server.listen(port, values.host, () => {
    const { port: bound } = server.address();
    const info = backendInfo();
    console.log(`listening on http://${values.host}:${bound} (batching ${values.batching}; ${info.backend} backend, ` +
      `${info.isa ?? 'js'}, ${info.threads} threads)`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    console.error(`server.mjs: ${error.message}`);
    if (error instanceof UsageError) console.error(USAGE);
    process.exit(2);
  }
}
