/**
 * The pure-TypeScript backend: the reference every other backend is tested against, and the
 * fallback wherever the native addon cannot run.
 */
import type {
  Backend,
  BackendModel,
  ForwardResult,
  GruConfig,
  Gradients,
  LayerWeights,
  SequenceBatch,
  TrainingRun,
} from '../backend.js';
import { backwardDirection, forwardDirection, PackedDirection, type DirectionTape } from './direction.js';
import { abortedError } from '../../errors.js';
import { gemm, GemmScratch, packB, view } from './gemm.js';
import { makeSchedule, seqLayout, type Schedule, type SeqLayout } from './schedule.js';

interface LayerTape {
  readonly input: Float32Array;
  readonly inputLayout: SeqLayout;
  readonly directions: DirectionTape[];
}

class JsModel implements BackendModel {
  private readonly packed: PackedDirection[];
  private readonly scratch = new GemmScratch();

  constructor(private readonly config: GruConfig, weights: readonly LayerWeights[]) {
    const { inputSize, hiddenSize, numDirections, resetAfter } = config;
    this.packed = weights.map((w, index) => {
      const layerInput = index < numDirections ? inputSize : numDirections * hiddenSize;
      return new PackedDirection(w, layerInput, hiddenSize, resetAfter);
    });
  }

  forward(batch: SequenceBatch): ForwardResult {
    return this.run(batch, null, false).result;
  }

  forwardAsync(input: SequenceBatch, signal?: AbortSignal, owned = false): Promise<ForwardResult> {
    // Copied now, as the native backend does: the caller may reuse or transfer its arrays at once;
    // an owned batch (handed over, as the batcher's packed ones) is read in place.
    const batch: SequenceBatch = owned ? input : {
      ...input,
      x: input.x.slice(),
      h0: input.h0 ? input.h0.slice() : null,
      lengths: input.lengths ? input.lengths.slice() : null,
    };
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          if (signal?.aborted) throw abortedError(signal);
          resolve(this.forward(batch));
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  forwardTrain(batch: SequenceBatch, dropoutMasks: Float32Array[] | null): TrainingRun {
    const { result, tapes, sched } = this.run(batch, dropoutMasks, true);
    return {
      output: result.output,
      hidden: result.hidden,
      backward: (dOutput, dHidden) => this.backward(batch, sched, tapes, dropoutMasks, dOutput, dHidden),
    };
  }

  private run(batch: SequenceBatch, masks: Float32Array[] | null, keepTape: boolean) {
    const { hiddenSize: H, numLayers: L, numDirections: D } = this.config;
    const { steps: T, batch: B, batchFirst, h0 } = batch;
    const sched = makeSchedule(T, B, batch.lengths);
    const hidden = new Float32Array(L * D * B * H);
    const tapes: LayerTape[] = [];
    let input = batch.x;
    let inputLayout = seqLayout(T, B, this.config.inputSize, batchFirst);
    for (let layer = 0; layer < L; layer++) {
      const last = layer === L - 1;
      const outputLayout = seqLayout(T, B, D * H, last && batchFirst);
      const output = new Float32Array(T * B * D * H);
      const directions: DirectionTape[] = [];
      for (let d = 0; d < D; d++) {
        const slot = (layer * D + d) * B * H;
        const tape = forwardDirection(
          this.packed[layer * D + d],
          {
            sched, reverse: d === 1, input, inputLayout, h0, h0Offset: slot,
            output, outputLayout, outputColumn: d * H, hidden, hiddenOffset: slot,
          },
          keepTape,
          this.scratch,
        );
        if (tape) directions.push(tape);
      }
      if (keepTape) tapes.push({ input, inputLayout, directions });
      if (!last && masks) {
        const mask = masks[layer];
        for (let k = 0; k < output.length; k++) output[k] *= mask[k];
      }
      input = output;
      inputLayout = outputLayout;
    }
    return { result: { output: input, hidden }, tapes, sched };
  }

  private backward(
    batch: SequenceBatch,
    sched: Schedule,
    tapes: LayerTape[],
    masks: Float32Array[] | null,
    dOutput: Float32Array | null,
    dHidden: Float32Array | null,
  ): Gradients {
    const { hiddenSize: H, numLayers: L, numDirections: D } = this.config;
    const { steps: T, batch: B, batchFirst } = batch;
    const dH0 = new Float32Array(L * D * B * H);
    const weights: LayerWeights[] = new Array(L * D);
    let dY = dOutput;
    let dYLayout = seqLayout(T, B, D * H, batchFirst);
    let dInput = new Float32Array(0);
    for (let layer = L - 1; layer >= 0; layer--) {
      const { inputLayout, directions } = tapes[layer];
      dInput = new Float32Array(T * B * inputLayout.width);
      for (let d = 0; d < D; d++) {
        const slot = (layer * D + d) * B * H;
        weights[layer * D + d] = backwardDirection(
          this.packed[layer * D + d],
          directions[d],
          {
            sched, reverse: d === 1, dOutput: dY, dOutputLayout: dYLayout, dOutputColumn: d * H,
            dHidden, dHiddenOffset: slot, dInput, inputLayout, dH0, dH0Offset: slot,
          },
          this.scratch,
        );
      }
      if (layer > 0) {
        if (masks) {
          const mask = masks[layer - 1];
          for (let k = 0; k < dInput.length; k++) dInput[k] *= mask[k];
        }
        dY = dInput;
        dYLayout = inputLayout;
      }
    }
    return { dInput, dH0, weights };
  }
}

/** The pure-TypeScript backend: one thread; 'auto' uses it where the native addon does not load. */
export const jsBackend: Backend = {
  name: 'js',
  batchBuffer: (floats) => new Float32Array(floats),
  isa: 'js',
  threads: 1,
  maxThreads: 1,
  createModel(config: GruConfig, weights: readonly LayerWeights[]): BackendModel {
    return new JsModel(config, weights);
  },
  matmul(m, n, k, a, aRs, aCs, b, bRs, bCs, c, accumulate) {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (!accumulate) c.fill(0, 0, m * n);
      return;
    }
    // gemm multiplies by B transposed: as an n×k matrix, element (j, p) of ours is at j·bCs + p·bRs.
    const packed = packB(view(b, 0, bCs, bRs), n, k);
    gemm(m, view(a, 0, aRs, aCs), packed, c, 0, n, accumulate, matmulScratch);
  },
};
const matmulScratch = new GemmScratch();
