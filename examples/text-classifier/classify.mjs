// A PyTorch text classifier served from Node: Embedding -> GRU (2 layers, bidirectional,
// batch-first) -> Linear, its weights loaded from the one safetensors file make_model.py saved,
// concurrent requests run through gru.batcher(), and the logits compared with PyTorch's.
//
//   node examples/text-classifier/classify.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Embedding, GRU, Linear, loadModulesFile } from 'fastgru';

const here = new URL('.', import.meta.url);
const { vocab, texts, logits: expected } = JSON.parse(readFileSync(new URL('expected.json', here), 'utf8'));

// The modules of the PyTorch model, with its sizes; the file gives them their weights by name
// (embed.weight, gru.weight_ih_l0, ..., head.bias), and any entry no module takes would be an error.
const embed = new Embedding({ numEmbeddings: vocab.length, embeddingDim: 16, paddingIdx: 0 });
const gru = new GRU({ inputSize: 16, hiddenSize: 16, numLayers: 2, bidirectional: true, batchFirst: true });
const head = new Linear({ inFeatures: 32, outFeatures: 4 });
await loadModulesFile(fileURLToPath(new URL('model.safetensors', here)), { embed, gru, head });

// Characters are the tokens: 0 pads, 1 is any character outside the vocabulary.
const encode = (text) => Int32Array.from([...text], (c) => Math.max(vocab.indexOf(c, 2), 1));

// One request: a text in, its 4 logits out. The batcher packs concurrent requests of different
// lengths into one GRU call, each sequence run to its own length (no padding reaches the GRU).
const batcher = gru.batcher({ maxBatch: 8, maxDelayMs: 1 });
async function classify(text) {
  const ids = encode(text);
  const x = embed.forward({ data: ids, shape: [ids.length] });   // [T, 16]
  const { hidden } = await batcher.run(x);                       // hidden [numLayers·2 = 4, 16]
  // PyTorch's torch.cat([h_n[-2], h_n[-1]], dim=1): the last layer's forward and backward states.
  const last = hidden.data.slice(2 * 16, 4 * 16);
  return head.forward({ data: last, shape: [1, 32] }).data;      // [1, 4]
}

const results = await Promise.all(texts.map(classify));
const { requests, batches } = batcher.stats();
await batcher.close();

let maxDiff = 0;
texts.forEach((text, i) => {
  results[i].forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(v - expected[i][j])); });
  const best = results[i].indexOf(Math.max(...results[i]));
  console.log(`${JSON.stringify(text).padEnd(36)} class ${best}  logits ${Array.from(results[i], (v) => v.toFixed(4)).join(' ')}`);
});
console.log(`${requests} requests in ${batches} batch${batches === 1 ? '' : 'es'}`);
console.log(`max |fastgru - PyTorch| = ${maxDiff.toExponential(2)}`);
if (!(maxDiff <= 1e-5)) process.exit(1);
