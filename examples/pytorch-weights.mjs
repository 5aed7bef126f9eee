import { readFileSync } from 'node:fs';
import { GRU, tensor } from 'fastgru';

// A 2-layer nn.GRU(8, 16) saved from PyTorch with
//   json.dump({"stateDict": {k: v.tolist() for k, v in gru.state_dict().items()}, ...}, f)
const saved = JSON.parse(readFileSync('examples/data/pytorch_gru.json', 'utf8'));

const gru = new GRU({ inputSize: 8, hiddenSize: 16, numLayers: 2 });
gru.loadStateDict(saved.stateDict);

const x = tensor(saved.input); // [T=10, B=2, I=8]
const { output, hidden } = gru.forward(x);
console.log('output', output.shape, 'hidden', hidden.shape); // [10, 2, 16] and [2, 2, 16]

const pytorch = tensor(saved.expected.output);
const maxDiff = output.data.reduce((m, v, i) => Math.max(m, Math.abs(v - pytorch.data[i])), 0);
console.log('max |fastgru - PyTorch| =', maxDiff.toExponential(2));

// Training: forwardTrain keeps what backward needs. For the loss 0.5 * ||output||^2 the gradient
// of the output is the output itself.
const run = gru.forwardTrain(x);
const { dInput, dH0, grads } = run.backward(run.output);
console.log('dInput', dInput.shape, 'dH0', dH0.shape);
console.log('parameters with gradients:', Object.keys(grads).join(', '));
