// Hooks into the core for its C++ tests (native/test) only: neither the addon nor the core
// includes this header.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model_cache.h"
#include "thread_pool.h"

namespace fastgru {

// shared_model with the hash given, for the tests of a collision.
std::shared_ptr<const Model> shared_model_hashed(const GruConfig& config, const std::vector<DirectionWeights>& weights,
                                                 const KernelTable& kernels, uint64_t hash_a, uint64_t hash_b);

// The part [begin, end) of [0, total) that `team`'s member takes, in multiples of `grain`: the
// members' parts tile [0, total) in order.
inline void team_split(const Team& team, int64_t total, int64_t grain, int64_t* begin, int64_t* end) {
  const int64_t units = (total + grain - 1) / grain;
  const int64_t lo = units * team.id() / team.size();
  const int64_t hi = units * (team.id() + 1) / team.size();
  *begin = lo * grain < total ? lo * grain : total;
  *end = hi * grain < total ? hi * grain : total;
}

}  // namespace fastgru
