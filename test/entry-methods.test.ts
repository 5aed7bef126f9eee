// The serve and io rooms attach their methods to GRU (and sessions to Batcher) when they load; the
// package's entry points must load both, so that a user importing only 'fastgru', in ESM or in
// CommonJS, sees every method, at run time and in the declarations (dist/index.d.ts and .d.cts).
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { distWarning, ROOT, runNode } from './helpers/native.js';

const INSTANCE = ['batcher', 'session', 'share', 'saveSafetensors', 'loadKeras', 'toKeras', 'loadOnnx', 'toOnnx'];
const STATIC = ['fromShared', 'fromSafetensors'];

/** A consumer that calls every attached method; it type-checks only if the declarations carry them. */
const CONSUMER = `
import { GRU, Batcher, Session, type SharedGRU, type OnnxGruNode } from 'fastgru';
const gru: GRU = new GRU({ inputSize: 2, hiddenSize: 3 });
const batcher: Batcher = gru.batcher({ maxBatch: 4 });
const fromBatcher: Session = batcher.session(null);
const session: Session = gru.session();
const shared: SharedGRU = gru.share();
const copy: GRU = GRU.fromShared(shared, { threads: 1 });
const saved: Promise<void> = gru.saveSafetensors('m.safetensors', { prefix: 'rnn.' });
const loaded: Promise<GRU> = GRU.fromSafetensors('m.safetensors', { prefix: 'rnn.', backend: 'js' });
const same: GRU = gru.loadKeras(gru.toKeras()).loadOnnx(gru.toOnnx());
const nodes: OnnxGruNode[] = copy.toOnnx();
// @ts-expect-error: the declarations keep the argument types
gru.session('state');
export { fromBatcher, session, saved, loaded, same, nodes };
`;

describe('the entry points carry every method of the serve and io rooms', () => {
  it('at run time, in ESM (dist/index.js) and CommonJS (dist/index.cjs), as non-enumerable methods', async () => {
    expect(distWarning()).toBeNull();
    const script = `
      const cjs = require(${JSON.stringify(`${ROOT}dist/index.cjs`)});
      import(${JSON.stringify(pathToFileURL(`${ROOT}dist/index.js`).href)}).then((esm) => {
        const report = (m) => ({
          instance: ${JSON.stringify(INSTANCE)}.filter((n) => typeof m.GRU.prototype[n] === 'function'),
          statics: ${JSON.stringify(STATIC)}.filter((n) => typeof m.GRU[n] === 'function'),
          batcherSession: typeof m.Batcher.prototype.session,
          enumerable: [...Object.keys(m.GRU.prototype), ...Object.keys(m.GRU)],
          names: ${JSON.stringify(INSTANCE)}.map((n) => m.GRU.prototype[n] && m.GRU.prototype[n].name),
        });
        console.log(JSON.stringify({ cjs: report(cjs), esm: report(esm), one: cjs.GRU === esm.GRU }));
      });`;
    const child = await runNode(['-e', script]);
    expect(child.stderr).toBe('');
    const result = JSON.parse(child.stdout);
    for (const flavour of ['cjs', 'esm']) {
      expect(result[flavour], flavour).toEqual({
        instance: INSTANCE, statics: STATIC, batcherSession: 'function', enumerable: [], names: INSTANCE,
      });
    }
    expect(result.one).toBe(true);
  });

  it.each(['module', 'commonjs'])('in the declarations a %s consumer type-checks against', (type) => {
    expect(distWarning()).toBeNull();
    // The consumer, in a directory of its own, finds 'fastgru' at this package's built declarations.
    const dir = mkdtempSync(join(tmpdir(), 'fastgru-types-'));
    try {
      const file = join(dir, type === 'module' ? 'consumer.mts' : 'consumer.cts');
      writeFileSync(file, CONSUMER);
      const program = ts.createProgram([file], {
        module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, strict: true, noEmit: true,
        types: [], skipLibCheck: false, baseUrl: dir, paths: { fastgru: [join(ROOT, type === 'module' ? 'dist/index.d.ts' : 'dist/index.d.cts')] },
      });
      const messages = ts.getPreEmitDiagnostics(program).map((d) =>
        `${d.file ? d.file.fileName.slice(ROOT.length) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
      expect(messages).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
