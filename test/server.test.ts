// The example server (examples/server/server.mjs) answers every request with the bits of
// gru.forward on the same sequence, with batching on and off, and every bad request with a 4xx that
// names what was wrong. It runs the built package (dist/), as the example does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRU } from 'fastgru';
import { createServer } from '../examples/server/server.mjs';
import { expectBitwise } from './helpers/compare.js';
import { prng, uniform } from './helpers/native.js';

const I = 128;
const H = 256;
const SEED = 1;
const MiB = 1024 * 1024;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection; settles with the reply even when the server stops reading the body. */
function request(port: number, path: string, options: { method?: string; type?: string; body?: Buffer | string; chunked?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    if (options.type) headers['content-type'] = options.type;
    const req = http.request({ port, path, method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // A server that answers 413 and closes while the body is still being sent resets the connection.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    if (options.chunked && options.body !== undefined) {
      const body = Buffer.from(options.body);
      for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
      req.end();
    } else req.end(options.body);
  });
}

const json = (reply: Reply) => JSON.parse(reply.body.toString('utf8'));
const post = (port: number, value: unknown) => request(port, '/predict', { method: 'POST', type: 'application/json', body: JSON.stringify(value) });
const postBinary = (port: number, body: Buffer | Float32Array) =>
  request(port, '/predict', { method: 'POST', type: 'application/octet-stream', body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) });

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function rows(data: Float32Array, width: number): number[][] {
  return Array.from({ length: data.length / width }, (_, t) => Array.from(data.subarray(t * width, (t + 1) * width)));
}

const reference = new GRU({ inputSize: I, hiddenSize: H, seed: SEED });

describe.each([
  ['on', true],
  ['off', false],
])('the example server with batching %s', (_, batching) => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = createServer({ batching, seed: SEED });
    port = await listen(server);
  });
  afterAll(() => close(server));

  it('answers JSON and binary requests with the bits of gru.forward', async () => {
    const rand = prng(7);
    const T = 9;
    const x = uniform(rand, T * I, 1);
    const h0 = uniform(rand, H, 0.5);
    const expected = reference.forward({ data: x, shape: [T, I] });

    const byJson = await post(port, { x: rows(x, I) });
    expect(byJson.status).toBe(200);
    const reply = json(byJson);
    expect(reply.steps).toBe(T);
    expectBitwise(Float32Array.from(reply.output), expected.output.data.subarray((T - 1) * H), 'JSON output');
    expectBitwise(Float32Array.from(reply.hidden[0]), expected.hidden.data, 'JSON hidden');

    const byBinary = await postBinary(port, x);
    expect(byBinary.status).toBe(200);
    expect(byBinary.headers['content-type']).toBe('application/octet-stream');
    expect(byBinary.body.length).toBe(4 * H);
    const hidden = new Float32Array(H);
    new Uint8Array(hidden.buffer).set(byBinary.body);
    expectBitwise(hidden, expected.hidden.data, 'binary hidden');

    const fromH0 = reference.forward({ data: x, shape: [T, I] }, { data: h0, shape: [1, H] });
    const withH0 = json(await post(port, { x: rows(x, I), h0: [Array.from(h0)] }));
    expectBitwise(Float32Array.from(withH0.hidden[0]), fromH0.hidden.data, 'hidden from h0');
  });

  it('answers GET /health and GET /stats', async () => {
    const health = await request(port, '/health');
    expect(health.status).toBe(200);
    const before = json(await request(port, '/stats'));
    expect((await postBinary(port, uniform(prng(2), 4 * I, 1))).status).toBe(200);
    const stats = json(await request(port, '/stats'));
    expect(stats.batching).toBe(batching);
    expect(stats.completed).toBe(before.completed + 1);
    expect(stats.inFlight).toBe(0);
    expect(stats.failed).toBe(0);
    if (batching) expect(stats.batchSize.count).toBeGreaterThan(0);
  });

  const row = (value: unknown, at = 5) => Array.from({ length: I }, (_, i) => (i === at ? value : 0.25));
  const jsonCases: Array<[string, string, RegExp]> = [
    ['malformed JSON', '{"x": [[1, 2', /^body: expected JSON/],
    ['a body that is not an object', '[[1, 2]]', /^body: expected a JSON object/],
    ['an unknown field', JSON.stringify({ x: [row(0)], y: 1 }), /^body: unknown field "y"/],
    ['no x', '{}', /^x: expected a non-empty array of rows of 128 numbers, got undefined/],
    ['an empty x', '{"x": []}', /^x: expected a non-empty array of rows of 128 numbers, got \[\]/],
    ['a row of the wrong width', JSON.stringify({ x: [row(0), row(0).slice(1)] }), /^x\[1\]: expected 128 numbers, got 127/],
    ['a row that is not an array', JSON.stringify({ x: [row(0), 3] }), /^x\[1\]: expected 128 numbers, got 3/],
    ['an infinite number', `{"x": [[${row(0).map((v, i) => (i === 5 ? '1e999' : v)).join(',')}]]}`,
      /^x\[0\]\[5\]: expected a finite float32 number, got Infinity/],
    ['a number beyond float32', JSON.stringify({ x: [row(1e39)] }), /^x\[0\]\[5\]: expected a finite float32 number, got 1e\+39/],
    ['a string', JSON.stringify({ x: [row(0), row('NaN', 7)] }), /^x\[1\]\[7\]: expected a finite float32 number, got "NaN"/],
    ['a null', JSON.stringify({ x: [row(null)] }), /^x\[0\]\[5\]: expected a finite float32 number, got null/],
    ['an h0 of two rows', JSON.stringify({ x: [row(0)], h0: [new Array(H).fill(0), new Array(H).fill(0)] }),
      /^h0: expected one row of 256 numbers \(\[\[\.\.\.\]\]\), got 2 rows/],
    ['an h0 row of the wrong width', JSON.stringify({ x: [row(0)], h0: [new Array(H - 1).fill(0)] }), /^h0\[0\]: expected 256 numbers, got 255/],
  ];
  it.each(jsonCases)('answers 400 to %s, naming the field', async (_, body, message) => {
    const reply = await request(port, '/predict', { method: 'POST', type: 'application/json', body });
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(json(reply).error).toMatch(message);
  });

  it('answers 400 to binary bodies that are not T × I finite float32 values', async () => {
    const odd = await postBinary(port, Buffer.alloc(1000));
    expect(odd.status).toBe(400);
    expect(json(odd).error).toMatch(/^body: expected T × 128 float32 values \(a positive multiple of 512 bytes\), got 1000 bytes/);
    const empty = await postBinary(port, Buffer.alloc(0));
    expect(empty.status).toBe(400);
    expect(json(empty).error).toMatch(/got 0 bytes$/);
    const x = new Float32Array(2 * I);
    x[I + 3] = NaN;
    const nan = await postBinary(port, x);
    expect(nan.status).toBe(400);
    expect(json(nan).error).toBe('body: expected finite float32 values, got NaN at step 1, column 3');
  });

  it('answers 413 to a body over 8 MiB, declared or chunked', async () => {
    const big = Buffer.alloc(8 * MiB + 4 * I);
    const declared = await request(port, '/predict', { method: 'POST', type: 'application/octet-stream', body: big });
    expect(declared.status).toBe(413);
    expect(json(declared).error).toBe('body: expected at most 8388608 bytes');
    const chunked = await request(port, '/predict', { method: 'POST', type: 'application/octet-stream', body: big, chunked: true });
    expect(chunked.status).toBe(413);
    expect(json(chunked).error).toBe('body: expected at most 8388608 bytes');
  });

  it('answers 415, 405 and 404 for the wrong content type, method and path', async () => {
    const text = await request(port, '/predict', { method: 'POST', type: 'text/plain', body: 'hi' });
    expect(text.status).toBe(415);
    expect(json(text).error).toBe('content-type: expected application/json or application/octet-stream, got text/plain');
    const none = await request(port, '/predict', { method: 'POST', body: '{}' });
    expect(none.status).toBe(415);
    expect(json(none).error).toMatch(/got none$/);
    const get = await request(port, '/predict');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(json(get).error).toBe('method: /predict takes POST, got GET');
    const postStats = await request(port, '/stats', { method: 'POST', type: 'application/json', body: '{}' });
    expect(postStats.status).toBe(405);
    expect(json(postStats).error).toBe('method: /stats takes GET, got POST');
    const missing = await request(port, '/nope?x=1');
    expect(missing.status).toBe(404);
    expect(json(missing).error).toBe('path: expected /predict, /stats or /health, got "/nope"');
  });

  it('still serves after every bad request', async () => {
    const x = uniform(prng(3), 2 * I, 1);
    const reply = await postBinary(port, x);
    expect(reply.status).toBe(200);
    const stats = json(await request(port, '/stats'));
    expect(stats.failed).toBe(0);
  });
});

describe('the example server with batching on, under concurrency', () => {
  it('gives each of 50 concurrent requests of different lengths its own result, in shared batches', async () => {
    // A delay long enough that the requests meet in batches however the machine schedules them.
    const server = createServer({ batching: true, seed: SEED, maxDelayMs: 20 });
    const port = await listen(server);
    try {
      const rand = prng(11);
      const inputs = Array.from({ length: 50 }, (_, k) => uniform(rand, (1 + ((k * 7) % 40)) * I, 1));
      const replies = await Promise.all(inputs.map((x, k) => (k % 2 ? postBinary(port, x) : post(port, { x: rows(x, I) }))));
      replies.forEach((reply, k) => {
        expect(reply.status).toBe(200);
        const T = inputs[k].length / I;
        const expected = reference.forward({ data: inputs[k], shape: [T, I] });
        const hidden = k % 2 ? new Float32Array(reply.body.buffer.slice(reply.body.byteOffset, reply.body.byteOffset + reply.body.length))
          : Float32Array.from(json(reply).hidden[0]);
        expectBitwise(hidden, expected.hidden.data, `request ${k} (T ${T}) hidden`);
      });
      const stats = json(await request(port, '/stats'));
      expect(stats.completed).toBe(50);
      expect(stats.batches).toBeLessThan(50);
      expect(stats.batchSize.max).toBeGreaterThan(1);
    } finally {
      await close(server);
    }
  });

  it('answers 503 with Retry-After when the queue is full', async () => {
    const server = createServer({ batching: true, seed: SEED, maxDelayMs: 200, maxQueue: 1 });
    const port = await listen(server);
    try {
      const x = uniform(prng(5), I, 1);
      const replies = await Promise.all([postBinary(port, x), postBinary(port, x), postBinary(port, x)]);
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 503, 503]);
      const full = replies.find((r) => r.status === 503)!;
      expect(full.headers['retry-after']).toBe('1');
      expect(json(full).error).toMatch(/^the queue is full: 1 requests wait \(maxQueue 1\)/);
    } finally {
      await close(server);
    }
  });
});
