// The CommonJS user: `require('fastgru')`, and then `import('fastgru')` in the same process, which
// must give the same module (one addon, one pool, one set of error classes).
//   node app.cjs EXPECTED-BACKEND [SOURCE]
const assert = require('node:assert/strict');
const fastgru = require('fastgru');
const { GRU, OptionError, FastGruError } = require('fastgru');

const [expected, source] = process.argv.slice(2);
(async () => {
  const esm = await import('fastgru');
  assert.equal(esm.GRU, GRU, 'require and import give the same GRU class');
  assert.equal(esm.backendInfo, fastgru.backendInfo, 'require and import give the same module');
  let caught;
  try {
    new GRU({ inputSize: 0, hiddenSize: 2 });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof esm.FastGruError && caught instanceof FastGruError, 'instanceof holds across require and import');
  assert.ok(caught instanceof OptionError || caught instanceof esm.ArgumentError, `an option error: ${caught}`);
  const { checkInstalled } = await import('./checks.mjs');
  await checkInstalled(fastgru, { expected, source, label: 'cjs' });
  console.log('   cjs: ok: require and import share one module, and instanceof holds across them');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
