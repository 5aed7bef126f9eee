// The model cache: one packed Model per distinct (configuration, kernels, weight values) in the
// process, shared by every caller that asks for the same weights.
#pragma once

#include <memory>
#include <vector>

#include "gru.h"

namespace fastgru {

// The process-wide model for these weights: every caller that passes the same configuration,
// kernels and weight values gets the same Model, for as long as one of them holds it. A 128-bit
// hash of the weights finds the candidates; the caller's weights are packed (outside the table's
// lock) and compared byte for byte with a candidate's before it is returned, so weights made to
// collide get a model of their own. For models built in several worker_threads from one
// SharedArrayBuffer of weights (GRU.fromShared). Thread-safe.
std::shared_ptr<const Model> shared_model(const GruConfig& config, const std::vector<DirectionWeights>& weights,
                                          const KernelTable& kernels);

}  // namespace fastgru
