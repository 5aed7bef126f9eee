// What the safetensors file readers and writers (src/io/safetensors.ts, and the GRU-level readers
// in src/io/statedict.ts that call them) do with what they find at a path: a FIFO or a device is
// an error at once, never a hang; a file is replaced only when every byte was written, even when a
// tensor's buffer is detached during an asynchronous write; an overwritten file keeps its mode;
// a symbolic link is refused by the writers and followed by the readers.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { thrownBy, rejectionOf } from './helpers/errors.js';
import { ArgumentError, FastGruError, GRU, tensor } from '../src/index.js';
import {
  readGruSafetensorsFile,
  readGruSafetensorsFileSync,
  readSafetensorsFile,
  readSafetensorsFileSync,
  writeSafetensors,
  writeSafetensorsFile,
  writeSafetensorsFileSync,
} from '../src/io/index.js';

const posix = process.platform !== 'win32';
const scratch = mkdtempSync(join(tmpdir(), 'fastgru-files-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const small = { w: tensor(Float32Array.of(1, 2, 3), [3]) };
const temporaries = () => readdirSync(scratch).filter((f) => f.endsWith('.tmp'));

function expectError(thrown: unknown, start: string, contains?: string): void {
  expect(thrown).toBeInstanceOf(ArgumentError);
  expect(thrown).toBeInstanceOf(FastGruError);
  const message = (thrown as Error).message;
  expect(message.startsWith(start), `message "${message}" should start with "${start}"`).toBe(true);
  if (contains !== undefined) expect(message).toContain(contains);
}

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Resolves once the writer's temporary file holds `bytes` bytes, or the write has settled. */
async function untilTemporaryHolds(bytes: number, settled: () => boolean): Promise<void> {
  while (!settled()) {
    const temp = temporaries()[0];
    try {
      if (temp !== undefined && statSync(join(scratch, temp)).size >= bytes) return;
    } catch {
      // Renamed between the listing and the stat: the write is about to settle.
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe.skipIf(!posix)('readers at a path that is not a regular file', () => {
  it('a FIFO is an error at once, synchronously and asynchronously, never a wait for a writer', async () => {
    const fifo = join(scratch, 'pipe.safetensors');
    execFileSync('mkfifo', [fifo]);
    // A reader that opens the FIFO for reading without O_NONBLOCK waits for a writer, forever: this
    // child opens it for writing every 3 s (with O_NONBLOCK, so it never waits itself), which frees
    // such a reader after at least 3 s, and the time it took fails the test instead of hanging vitest.
    const rescuer = spawn(process.execPath, ['-e', `
      const fs = require('node:fs');
      setInterval(() => { try { fs.closeSync(fs.openSync(${JSON.stringify(fifo)}, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch {} }, 3000);`],
    { stdio: 'ignore' });
    try {
      const readers: Array<[string, () => unknown]> = [
        ['readSafetensorsFileSync', () => readSafetensorsFileSync(fifo)],
        ['readSafetensorsFile', () => readSafetensorsFile(fifo)],
        ['readGruSafetensorsFileSync', () => readGruSafetensorsFileSync(fifo)],
        ['readGruSafetensorsFile', () => readGruSafetensorsFile(fifo)],
        ['GRU.fromSafetensors', () => GRU.fromSafetensors(fifo)],
      ];
      for (const [name, read] of readers) {
        const start = performance.now();
        let thrown: unknown;
        try {
          await read();
        } catch (error) {
          thrown = error;
        }
        expect(performance.now() - start, name).toBeLessThan(2000);
        expectError(thrown, 'path: expected a regular file', `${JSON.stringify(fifo)} (a FIFO, not a regular file)`);
      }
    } finally {
      rescuer.kill();
    }
  });

  it.skipIf(!existsSync('/dev/null'))('a character device is an error naming it', async () => {
    expectError(thrownBy(() => readSafetensorsFileSync('/dev/null')), 'path: expected a regular file', '"/dev/null" (a character device, not a regular file)');
    expectError(await rejectionOf(readSafetensorsFile('/dev/null')), 'path: expected a regular file', 'a character device');
  });

  it('a symbolic link is followed: the file it points to is read', async () => {
    const target = join(scratch, 'link-target.safetensors');
    const link = join(scratch, 'read-link.safetensors');
    writeSafetensorsFileSync(target, small);
    symlinkSync(target, link);
    expect(Array.from(readSafetensorsFileSync(link).tensors.w.data)).toEqual([1, 2, 3]);
    expect(Array.from((await readSafetensorsFile(link)).tensors.w.data)).toEqual([1, 2, 3]);
  });
});

describe('the asynchronous writer and a buffer detached while it writes', () => {
  // Several writes' worth of data, so the detachment can land between two writes.
  const floats = 5 << 20;
  const oldBytes = Buffer.from(writeSafetensors({ old: tensor(Float32Array.of(7, 8), [2]) }));

  it('rejects and leaves the old file byte for byte, or (detached after the last byte) writes it whole', async () => {
    const path = join(scratch, 'detach.safetensors');
    const total = writeSafetensors({ big: new Float32Array(floats), small: small.w }).length;
    // Detach at once, after a few turns of the event loop, and once the temporary file holds its
    // first bytes, a third, two thirds and all of them (then only the flush and rename remain).
    const waits: Array<number | { bytes: number }> = [0, 1, 2, 3, { bytes: 1 }, { bytes: total / 3 }, { bytes: (2 * total) / 3 }, { bytes: total }];
    const outcomes: string[] = [];
    for (const wait of waits) {
      writeFileSync(path, oldBytes);
      const data = new Float32Array(floats).fill(outcomes.length);
      const expected = Buffer.from(writeSafetensors({ big: data, small: small.w }));
      let settled = false;
      const writing = writeSafetensorsFile(path, { big: data, small: small.w }).finally(() => (settled = true));
      if (typeof wait === 'number') {
        for (let i = 0; i < wait; i++) await new Promise((resolve) => setImmediate(resolve));
      } else {
        await untilTemporaryHolds(wait.bytes, () => settled);
      }
      structuredClone(data.buffer, { transfer: [data.buffer] });
      expect(data.byteLength).toBe(0);
      try {
        await writing;
        outcomes.push('resolved');
        expect(readFileSync(path).equals(expected), `detached after ${JSON.stringify(wait)}, resolved: the whole file`).toBe(true);
      } catch (error) {
        outcomes.push('rejected');
        expectError(error, 'tensors["big"]: expected a buffer that keeps its 20971520 bytes until the write completes',
          'got one detached or resized to 0 bytes during the write');
        expect(readFileSync(path).equals(oldBytes), `detached after ${JSON.stringify(wait)}: the old file, untouched`).toBe(true);
      }
      expect(temporaries()).toEqual([]);
    }
    // Before the first byte of the data was copied the write must fail; after the last, succeed.
    // In between it depends on how far the writer got when the poll saw the file grow.
    expect(outcomes[0]).toBe('rejected');
    expect(outcomes[outcomes.length - 1]).toBe('resolved');
  });

  it('a tensor detached after its header entry was made is refused by every writer, before any file is made', async () => {
    const path = join(scratch, 'detached-early.safetensors');
    // Reading c's data (a getter) detaches b's buffer after b's entry was made from its 12 bytes.
    const tensors = () => {
      const b = new Float32Array(3);
      return {
        b: { data: b, shape: [3] },
        c: {
          get data() {
            structuredClone(b.buffer, { transfer: [b.buffer] });
            return Float32Array.of(5);
          },
          shape: [1],
        },
      };
    };
    const start = 'tensors["b"]: expected a buffer that keeps its 12 bytes until the write completes';
    expectError(thrownBy(() => writeSafetensors(tensors())), start, 'got one detached or resized to 0 bytes');
    expectError(thrownBy(() => writeSafetensorsFileSync(path, tensors())), start);
    expectError(await rejectionOf(writeSafetensorsFile(path, tensors())), start);
    expect(existsSync(path)).toBe(false);
    expect(temporaries()).toEqual([]);
  });
});

describe.skipIf(!posix)('overwriting keeps the file\'s mode', () => {
  it('0600, 0664 (wider than the usual umask lets open() make) and 0400 are kept by every writer', async () => {
    const path = join(scratch, 'private.safetensors');
    for (const mode of [0o600, 0o664, 0o400]) {
      writeSafetensorsFileSync(path, small);
      chmodSync(path, mode);
      writeSafetensorsFileSync(path, { w: tensor(Float32Array.of(4), [1]) });
      expect(modeOf(path).toString(8), 'sync').toBe(mode.toString(8));
      await writeSafetensorsFile(path, { w: tensor(Float32Array.of(5), [1]) });
      expect(modeOf(path).toString(8), 'async').toBe(mode.toString(8));
      await new GRU({ inputSize: 1, hiddenSize: 1, seed: 1, backend: 'js' }).saveSafetensors(path);
      expect(modeOf(path).toString(8), 'GRU.saveSafetensors').toBe(mode.toString(8));
      expect(Array.from(readSafetensorsFileSync(path).tensors.weight_ih_l0.shape)).toEqual([3, 1]);
      rmSync(path);
    }
  });

  it('a new file takes the mode fs.writeFileSync gives one (0666 less the umask)', async () => {
    const reference = join(scratch, 'reference');
    writeFileSync(reference, '');
    const path = join(scratch, 'new.safetensors');
    writeSafetensorsFileSync(path, small);
    expect(modeOf(path)).toBe(modeOf(reference));
    rmSync(path);
    await writeSafetensorsFile(path, small);
    expect(modeOf(path)).toBe(modeOf(reference));
  });
});

describe.skipIf(!posix)('the writers at a path that is not a regular file', () => {
  it('refuse a symbolic link, leaving the link and the file it points to as they were', async () => {
    const target = join(scratch, 'kept-target.safetensors');
    const link = join(scratch, 'kept-link.safetensors');
    writeSafetensorsFileSync(target, small);
    const before = readFileSync(target);
    symlinkSync(target, link);
    const got = `${JSON.stringify(link)} (a symbolic link`;
    expectError(thrownBy(() => writeSafetensorsFileSync(link, { w: [9] })), 'path: expected a regular file or a new file\'s path', got);
    expectError(await rejectionOf(writeSafetensorsFile(link, { w: [9] })), 'path: expected a regular file or a new file\'s path', got);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(target);
    expect(readFileSync(target).equals(before)).toBe(true);

    const dangling = join(scratch, 'dangling.safetensors');
    symlinkSync(join(scratch, 'nothing-here'), dangling);
    expectError(thrownBy(() => writeSafetensorsFileSync(dangling, small)), 'path: expected a regular file or a new file\'s path', 'a symbolic link');
    expectError(await rejectionOf(writeSafetensorsFile(dangling, small)), 'path: expected a regular file or a new file\'s path', 'a symbolic link');
    expect(existsSync(join(scratch, 'nothing-here'))).toBe(false);
    expect(temporaries()).toEqual([]);
  });

  it('refuse to replace a FIFO', async () => {
    const fifo = join(scratch, 'replace-me.fifo');
    execFileSync('mkfifo', [fifo]);
    const got = `${JSON.stringify(fifo)} (a FIFO, not a regular file)`;
    expectError(thrownBy(() => writeSafetensorsFileSync(fifo, small)), 'path: expected a regular file or a new file\'s path', got);
    expectError(await rejectionOf(writeSafetensorsFile(fifo, small)), 'path: expected a regular file or a new file\'s path', got);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(temporaries()).toEqual([]);
  });
});
