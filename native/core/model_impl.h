// The model's private parts that its units share: a direction's packed weights, and the view of a
// Model that the forward and backward passes read.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "gemm.h"
#include "gru.h"

namespace fastgru {

// A direction's weights, packed for every product forward and backward run. Gate columns are
// stored in an order that keeps one unit block's gates together:
//   reset_after: blocks of kGateBlock units, each [r z n] — a block's three gates sit together;
//   reset before: [r z] blocks for the first product, then n in natural order.
// The block is the same on every ISA, so the products that sum over gate columns (dX, dh) add
// in the same order everywhere.
struct PackedDirection {
  int input = 0;
  std::vector<int> gate_row;  // storage column -> PyTorch row (g·H + j), or -1 for padding
  PackedB wih, whh, whn;
  PackedB wih_t, whh_t, whrz_t, whn_t;
  Buffer bias_x, bias_hn;
  // Every pack, in the order of PackSpec::Slot (a form leaves the ones it does not use empty).
  std::array<PackedB*, 7> packs() { return {&wih, &wih_t, &whh, &whh_t, &whn, &whrz_t, &whn_t}; }
  std::array<const PackedB*, 7> packs() const { return {&wih, &wih_t, &whh, &whh_t, &whn, &whrz_t, &whn_t}; }
};

// What a pass reads of a Model: its configuration, kernels and packed directions.
struct ModelParts {
  const KernelTable& kt;
  const GruConfig& config;
  const std::vector<std::unique_ptr<PackedDirection>>& dirs;
  int hp, hn;
};

}  // namespace fastgru
