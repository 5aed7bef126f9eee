// Argument checks: a configuration's sizes and a call's batch (shapes, overflow, lengths).
#include <algorithm>
#include <limits>
#include <string>

#include "gru.h"
#include "schedule.h"

namespace fastgru {

namespace {

// a * b, or -1 when it overflows int64 (or either is negative).
int64_t mul_checked(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return -1;
  return a * b;
}

}  // namespace

void check_config(const GruConfig& c) {
  if (c.input_size < 1) throw Error("ERR_OPTION", "inputSize: expected a positive integer, got " + std::to_string(c.input_size));
  if (c.hidden_size < 1) throw Error("ERR_OPTION", "hiddenSize: expected a positive integer, got " + std::to_string(c.hidden_size));
  if (c.num_layers < 1) throw Error("ERR_OPTION", "numLayers: expected a positive integer, got " + std::to_string(c.num_layers));
  if (c.num_directions != 1 && c.num_directions != 2)
    throw Error("ERR_OPTION", "numDirections: expected 1 or 2, got " + std::to_string(c.num_directions));
  const int64_t widest = mul_checked(3LL * c.hidden_size, std::max<int64_t>(c.input_size, int64_t(c.num_directions) * c.hidden_size));
  if (widest < 0 || widest > (int64_t(1) << 30))
    throw Error("ERR_OPTION", "hiddenSize: expected sizes whose largest weight holds at most 2^30 elements, got inputSize " +
                                  std::to_string(c.input_size) + ", hiddenSize " + std::to_string(c.hidden_size));
}

CallSizes check_batch(const GruConfig& c, const SequenceBatch& b) {
  if (b.steps < 0) throw Error("ERR_SHAPE", "x: expected a non-negative number of steps, got " + std::to_string(b.steps));
  if (b.batch < 0) throw Error("ERR_SHAPE", "x: expected a non-negative batch size, got " + std::to_string(b.batch));
  const int64_t D = c.num_directions;
  const int64_t tb = mul_checked(b.steps, b.batch);
  const int64_t x = mul_checked(tb, c.input_size);
  const int64_t out = mul_checked(tb, D * c.hidden_size);
  const int64_t h = mul_checked(mul_checked(int64_t(c.num_layers) * D, b.batch), c.hidden_size);
  // Internal buffers are padded to whole vectors and panels: keep every size far from overflow.
  const int64_t limit = int64_t(1) << 40;
  // Lengths, the schedule and the kernels' row counts are int32: steps and batch must fit.
  const int64_t int32_max = std::numeric_limits<int32_t>::max();
  if (b.steps > int32_max || b.batch > int32_max || x < 0 || out < 0 || h < 0 || x > limit || out > limit ||
      h > limit || mul_checked(tb, 3LL * round_up(c.hidden_size, 64)) > limit)
    throw Error("ERR_SHAPE", "x: expected sizes whose element counts fit in memory, got steps " + std::to_string(b.steps) +
                                 " and batch " + std::to_string(b.batch));
  if (b.lengths) {
    for (int64_t i = 0; i < b.batch; i++) {
      const int32_t L = b.lengths[i];
      if (L < 0 || L > b.steps)
        throw Error("ERR_ARGUMENT", "lengths[" + std::to_string(i) + "]: expected an integer in 0.." +
                                        std::to_string(b.steps) + ", got " + std::to_string(L));
    }
  }
  return {x, h, out};
}

}  // namespace fastgru
