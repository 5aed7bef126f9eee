/**
 * PyTorch's names and shapes of a GRU's parameters (torch.nn.GRU's state_dict), per layer and
 * direction: weight_ih_l{k}[_reverse] [3H, input of layer k], weight_hh_l{k}[_reverse] [3H, H],
 * bias_ih_l{k}[_reverse] and bias_hh_l{k}[_reverse] [3H], gate rows r, z, n. The GRU, the state-dict
 * reader and the converters all name and shape parameters through this module.
 */

/** The four kinds of parameter of one layer and direction. */
export type ParameterKind = 'weight_ih' | 'weight_hh' | 'bias_ih' | 'bias_hh';

/** The kinds in state-dict order, without and with biases. */
export const WEIGHT_KINDS: readonly ParameterKind[] = Object.freeze(['weight_ih', 'weight_hh']);
/** The kinds with biases, in state-dict order. */
export const ALL_KINDS: readonly ParameterKind[] = Object.freeze(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);

/**
 * A GRU parameter's name: kind (`weight|bias`, `ih|hh`), layer (1 to 6 digits, no leading zero) and
 * the reverse direction's suffix.
 */
export const PARAMETER_NAME = /^(weight|bias)_(ih|hh)_l(0|[1-9][0-9]{0,5})(_reverse)?$/;

/** The sizes that fix the parameters' names and shapes. */
export interface ParameterLayout {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly bias: boolean;
}

/** A parameter's state-dict name and shape. */
export interface ParameterSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The state-dict names of one layer and direction, keyed like the backend's LayerWeights. */
export interface DirectionNames {
  readonly wIh: string;
  readonly wHh: string;
  readonly bIh: string;
  readonly bHh: string;
}

/** The name of parameter `kind` of layer `layer`, direction `direction` (0 forward, 1 reverse). */
export function parameterName(kind: ParameterKind, layer: number, direction: number): string {
  return `${kind}_l${layer}${direction === 1 ? '_reverse' : ''}`;
}

/** The names of one layer and direction's four parameters. */
export function directionNames(layer: number, direction: number): DirectionNames {
  return {
    wIh: parameterName('weight_ih', layer, direction),
    wHh: parameterName('weight_hh', layer, direction),
    bIh: parameterName('bias_ih', layer, direction),
    bHh: parameterName('bias_hh', layer, direction),
  };
}

/**
 * The shape of parameter `kind` of layer `layer` in a GRU of hidden size H reading `inputSize`
 * features, with D directions: layer 0 reads the input, a later layer the D·H features below it.
 */
export function parameterShape(kind: ParameterKind, layer: number, sizes: { inputSize: number; hiddenSize: number; directions: number }):
  readonly number[] {
  const H = sizes.hiddenSize;
  if (kind === 'weight_ih') return Object.freeze([3 * H, layer === 0 ? sizes.inputSize : sizes.directions * H]);
  if (kind === 'weight_hh') return Object.freeze([3 * H, H]);
  return Object.freeze([3 * H]);
}

/** Each layer and direction's names, layer-major (index = layer · D + direction), as the backend orders them. */
export function gruDirectionNames(layout: Pick<ParameterLayout, 'numLayers' | 'bidirectional'>): DirectionNames[] {
  const D = layout.bidirectional ? 2 : 1;
  const names: DirectionNames[] = [];
  for (let layer = 0; layer < layout.numLayers; layer++) {
    for (let d = 0; d < D; d++) names.push(directionNames(layer, d));
  }
  return names;
}

/** Every parameter's name and shape, in PyTorch's state-dict order. */
export function parameterSpecs(layout: ParameterLayout): ParameterSpec[] {
  const D = layout.bidirectional ? 2 : 1;
  const sizes = { inputSize: layout.inputSize, hiddenSize: layout.hiddenSize, directions: D };
  const kinds = layout.bias ? ALL_KINDS : WEIGHT_KINDS;
  const specs: ParameterSpec[] = [];
  for (let layer = 0; layer < layout.numLayers; layer++) {
    for (let d = 0; d < D; d++) {
      for (const kind of kinds) specs.push({ name: parameterName(kind, layer, d), shape: parameterShape(kind, layer, sizes) });
    }
  }
  return specs;
}

/**
 * torch.nn.GRUCell's parameters: the kinds themselves (weight_ih [3H, I], weight_hh [3H, H], bias_ih
 * and bias_hh [3H]), no layer suffix, in state-dict order. The same values as layer 0 of a
 * one-layer unidirectional GRU's (see cellToGruName).
 */
export function cellParameterSpecs(layout: Pick<ParameterLayout, 'inputSize' | 'hiddenSize' | 'bias'>): ParameterSpec[] {
  const sizes = { inputSize: layout.inputSize, hiddenSize: layout.hiddenSize, directions: 1 };
  return (layout.bias ? ALL_KINDS : WEIGHT_KINDS).map((kind) => ({ name: kind, shape: parameterShape(kind, 0, sizes) }));
}

/** The name in a one-layer unidirectional GRU of a cell's parameter: weight_ih → weight_ih_l0. */
export function cellToGruName(kind: ParameterKind): string {
  return parameterName(kind, 0, 0);
}
