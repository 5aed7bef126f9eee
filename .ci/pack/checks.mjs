// What a user's program sees of the installed package, checked with numbers; shared by the ESM
// (app.mjs) and CommonJS (app.cjs) programs that .ci/pack-install.sh installs fastgru for.
import assert from 'node:assert/strict';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

/**
 * fastgru: the module as the program loaded it. expected: 'native' (a prebuild or a source build)
 * or 'js' (none fits). source: the addon's expected source when native.
 */
export async function checkInstalled(fastgru, { expected, source, label }) {
  const { BackendUnavailableError, GRU, backendInfo, tensor } = fastgru;
  const installed = realpathSync(join(process.cwd(), 'node_modules', 'fastgru'));
  const info = backendInfo();
  console.log(`   ${label}: node ${process.version}: backendInfo(): ${JSON.stringify(info)}`);
  assert.equal(info.backend, expected, 'backendInfo().backend');
  assert.ok(Number.isInteger(info.threads) && info.threads >= 1, `threads: ${info.threads}`);
  if (expected === 'js') {
    assert.match(info.reason ?? '', new RegExp(`${process.platform}-${process.arch}`), 'the reason names the platform');
    assert.match(info.reason ?? '', /npx fastgru build/, 'the reason names the build command');
    assert.throws(() => new GRU({ inputSize: 2, hiddenSize: 2, backend: 'native' }), BackendUnavailableError);
  } else {
    assert.equal(info.reason, undefined, 'backendInfo().reason');
    assert.ok(['ref', 'avx2', 'avx512', 'neon'].includes(info.isa), `isa: ${info.isa}`);
    assert.equal(info.addon?.source, source, 'backendInfo().addon.source');
    assert.ok(realpathSync(info.addon.path).startsWith(installed + '/'), `the engine comes from the installed package: ${info.addon.path}`);
    if (source === 'prebuild') assert.ok(!existsSync(join(installed, 'build')), 'no build/ folder: nothing was compiled');
  }

  const T = 5, B = 3, I = 4, H = 6;
  const options = { inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, seed: 7 };
  const gru = new GRU(options);
  const x = tensor(Float32Array.from({ length: T * B * I }, (_, i) => Math.sin(0.37 * i)), [T, B, I]);
  const { output, hidden } = gru.forward(x);
  assert.deepEqual([...output.shape], [T, B, 2 * H], 'output.shape');
  assert.deepEqual([...hidden.shape], [4, B, H], 'hidden.shape');
  for (const [name, t] of [['output', output], ['hidden', hidden]]) {
    const bad = t.data.findIndex((v) => !Number.isFinite(v) || Math.abs(v) >= 1);
    assert.equal(bad, -1, `${name}[${bad}] = ${t.data[bad]}`);
    assert.ok(t.data.some((v) => v !== 0), `${name} is all zeros`);
  }
  let checked = `forward [${T}, ${B}, ${I}] finite, in (-1, 1)`;
  if (expected === 'native') {
    const async = await gru.forwardAsync(x);
    assert.deepEqual(async.output.data, output.data, "forwardAsync gives forward's bits");
    const js = new GRU({ ...options, backend: 'js' }).forward(x);
    let worst = 0;
    for (let i = 0; i < output.data.length; i++) worst = Math.max(worst, Math.abs(output.data[i] - js.output.data[i]));
    assert.ok(worst < 1e-5, `native vs js: max |diff| ${worst}`);
    const run = gru.forwardTrain(x);
    const grads = run.backward(tensor(new Float32Array(output.data.length).fill(1), output.shape));
    assert.ok(grads.dInput.data.every(Number.isFinite) && grads.dInput.data.some((v) => v !== 0), 'backward gives a finite dInput');
    checked += `; forwardAsync == forward; native vs js max |diff| ${worst.toExponential(2)}; backward ok`;
  }
  console.log(`   ${label}: ok: ${checked}`);
}
