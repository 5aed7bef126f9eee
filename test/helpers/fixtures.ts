import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GRUOptions } from '../../src/index.js';

export interface FixtureTensor {
  shape: number[];
  data: number[];
}

export interface PyTorchFixture {
  name: string;
  options: Required<Pick<GRUOptions, 'inputSize' | 'hiddenSize' | 'numLayers' | 'bidirectional' | 'batchFirst' | 'bias' | 'resetAfter'>>;
  stateDict: Record<string, FixtureTensor>;
  x: FixtureTensor;
  h0: FixtureTensor | null;
  lengths: number[] | null;
  dOutput: FixtureTensor;
  dHidden: FixtureTensor;
  output: FixtureTensor;
  hidden: FixtureTensor;
  dInput: FixtureTensor;
  dH0: FixtureTensor;
  grads: Record<string, FixtureTensor>;
}

const dir = fileURLToPath(new URL('../fixtures/pytorch/', import.meta.url));

export function loadFixtures(): PyTorchFixture[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(dir + f, 'utf8')) as PyTorchFixture);
}
