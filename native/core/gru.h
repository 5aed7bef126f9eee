// fastgru's engine: the whole public surface of the core. Plain C++17; nothing here knows Node.
//
//   r = σ(W_ir x + b_ir + W_hr h + b_hr)
//   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      reset_after (PyTorch, cuDNN, Keras)
//   n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      reset before (Cho 2014, d2l)
//   h' = z ⊙ h + (1 − z) ⊙ n
//
// Layouts are PyTorch's: x [T, B, I] (or [B, T, I] batch-first), h0 and hidden [L·D, B, H],
// output [T, B, D·H] (or [B, T, D·H]); weight_ih [3H, I_l], weight_hh [3H, H], biases [3H], gate
// rows r, z, n. Variable lengths follow packed sequences. Results are identical, bit for bit,
// for any thread count and any ISA.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "error.h"
#include "gemm.h"

namespace fastgru {

struct KernelTable;
class ThreadPool;
struct PackedDirection;
struct ModelParts;

struct GruConfig {
  int input_size = 0;
  int hidden_size = 0;
  int num_layers = 1;
  int num_directions = 1;
  bool reset_after = true;
  bool bias = true;
};

// One layer and direction's parameters (PyTorch layouts); biases null when config.bias is false.
// A model takes num_layers * num_directions of them, layer-major: index = layer * D + direction.
struct DirectionWeights {
  const float* w_ih = nullptr;
  const float* w_hh = nullptr;
  const float* b_ih = nullptr;
  const float* b_hh = nullptr;
};

// Where backward writes one direction's parameter gradients (PyTorch layouts).
struct DirectionGradients {
  float* w_ih = nullptr;
  float* w_hh = nullptr;
  float* b_ih = nullptr;
  float* b_hh = nullptr;
};

struct SequenceBatch {
  const float* x = nullptr;
  int64_t steps = 0;
  int64_t batch = 0;
  bool batch_first = false;
  const float* h0 = nullptr;          // [L·D, B, H] or null for zeros
  const int32_t* lengths = nullptr;   // [B], each in 0..steps, or null for all steps
};

// Element counts of one call's tensors.
struct CallSizes {
  int64_t x, h, output;
};

// Throws Error(ERR_OPTION) unless every size is positive and every weight fits in memory.
void check_config(const GruConfig& config);
// Throws Error(ERR_SHAPE / ERR_ARGUMENT) for negative sizes, products that overflow, or lengths
// outside 0..steps. Returns the element counts the buffers must have.
CallSizes check_batch(const GruConfig& config, const SequenceBatch& batch);

// Everything backward needs from a training forward. Owns its memory.
class Tape {
 public:
  ~Tape();
  int64_t bytes() const;
  struct Impl;  // what the tape holds: defined in tape.h, for the core's own units

 private:
  friend class Model;
  std::unique_ptr<Impl> impl_;
  explicit Tape(std::unique_ptr<Impl> impl);
};

class Model {
 public:
  // Copies nothing it keeps a pointer to: the weights are packed here, once, for forward and
  // backward, and the caller's arrays may be freed afterwards. Throws Error on a bad config.
  Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels);
  // The same, with the packed weights in `arena` (arena_floats(config, kernels) floats), which the
  // caller owns and keeps alive as long as the model and its tapes are used.
  Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels, Arena* arena);
  static int64_t arena_floats(const GruConfig& config, const KernelTable& kernels);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const GruConfig& config() const;
  const KernelTable& kernels() const;
  int64_t packed_bytes() const;
  // Diagnostic: the bytes of working memory the latest forward, forward_train or backward on this
  // model reserved (the tape and the caller's buffers aside). Their formulas are stated beside
  // the passes, struct Forward (forward.cpp) and struct Backward (backward.cpp); with calls in flight on several threads, any one of theirs.
  int64_t last_work_bytes() const;
  // The same configuration, kernels and packed bytes: the two compute the same bits in every call.
  bool same_packing(const Model& other) const;

  // output [T, B, D·H] and hidden [L·D, B, H] are fully written. Safe to call concurrently.
  void forward(const SequenceBatch& batch, float* output, float* hidden, ThreadPool& pool, int threads) const;

  // forward in training mode. dropout_masks: null, or num_layers - 1 arrays [T, B, D·H] that
  // multiply each layer's output before the next layer reads it. The tape copies x and the masks.
  std::unique_ptr<Tape> forward_train(const SequenceBatch& batch, const float* const* dropout_masks, float* output,
                                      float* hidden, ThreadPool& pool, int threads, Arena* arena = nullptr) const;
  // Floats a tape of this batch takes in an arena (with or without dropout masks).
  int64_t tape_floats(const SequenceBatch& batch, bool with_masks) const;

  // d_output [T, B, D·H] and d_hidden [L·D, B, H] may be null (zeros). Writes d_input (x's layout),
  // d_h0 and every parameter gradient. May be called more than once per tape.
  void backward(const Tape& tape, const float* d_output, const float* d_hidden, float* d_input, float* d_h0,
                const std::vector<DirectionGradients>& grads, ThreadPool& pool, int threads) const;

 private:
  // What the forward and backward passes read of the model (model_impl.h).
  ModelParts parts() const;
  GruConfig config_;
  const KernelTable& kt_;
  std::vector<std::unique_ptr<PackedDirection>> dirs_;
  int hp_ = 0, hn_ = 0;
  int64_t packed_bytes_ = 0;
  mutable std::atomic<int64_t> work_bytes_{0};
};

}  // namespace fastgru
