// The tape: what a training forward keeps for backward (the schedule, the inputs of every layer,
// the dropout masks and each direction's gate values, row by packed row).
#pragma once

#include <cstdint>
#include <vector>

#include "gru.h"
#include "memory.h"
#include "schedule.h"

namespace fastgru {

struct Tape::Impl {
  int64_t steps = 0, batch = 0;
  bool batch_first = false;
  Schedule sched;
  Buffer x;                          // a copy of the layer-0 input, in its layout
  std::vector<Buffer> layer_inputs;  // layer l >= 1 reads layer_inputs[l - 1]: time-first, masked
  std::vector<Buffer> masks;         // num_layers - 1 copies, or none
  struct Dir {
    Buffer h, r, z, n, inner;        // [P, Hp] each, packed rows
  };
  std::vector<Dir> dirs;
  int64_t bytes = 0;

  // A tape for forward_train of `in` (checked, its sizes `sizes`): a copy of x and of the
  // dropout masks (null, or num_layers - 1 arrays), room for every layer's input and for each
  // direction's per-row gate values. In `arena` when given.
  Impl(const GruConfig& config, int hp, const SequenceBatch& in, const CallSizes& sizes,
       const float* const* dropout_masks, Arena* arena);
  // The masks' copies, as forward reads them: null when there are none.
  std::vector<const float*> mask_rows() const;
};

}  // namespace fastgru
