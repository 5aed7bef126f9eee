// Type-checked, not run: a CommonJS TypeScript service (module node16) sees fastgru's types.
import { GRU, backendInfo, tensor, type BackendInfo, type Tensor } from 'fastgru';

const info: BackendInfo = backendInfo();
const gru = new GRU({ inputSize: 4, hiddenSize: 8 });
const out: { output: Tensor; hidden: Tensor } = gru.forward(tensor(new Float32Array(12), [3, 1, 4]));
export const summary: string = `${info.backend} ${out.output.shape.join('x')}`;
