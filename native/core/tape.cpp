// The tape (tape.h): its allocation and copies for a training forward, and its size in an arena.
#include "tape.h"

#include <cstring>

namespace fastgru {

Tape::Tape(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tape::~Tape() = default;
int64_t Tape::bytes() const { return impl_->bytes; }

Tape::Impl::Impl(const GruConfig& config, int hp, const SequenceBatch& in, const CallSizes& sizes,
                 const float* const* dropout_masks, Arena* arena)
    : steps(in.steps), batch(in.batch), batch_first(in.batch_first), sched(in.steps, in.batch, in.lengths) {
  const int64_t P = sched.rows;
  const int L = config.num_layers, D = config.num_directions;
  const int64_t layer_out = in.steps * in.batch * D * config.hidden_size;
  x = uninit_buffer(sizes.x, arena);
  if (sizes.x) std::memcpy(x.get(), in.x, sizeof(float) * sizes.x);
  bytes += sizes.x * 4;
  for (int l = 0; l + 1 < L; l++) {
    layer_inputs.push_back(uninit_buffer(layer_out, arena));
    bytes += layer_out * 4;
    if (dropout_masks) {
      masks.push_back(uninit_buffer(layer_out, arena));
      if (layer_out) std::memcpy(masks.back().get(), dropout_masks[l], sizeof(float) * layer_out);
      bytes += layer_out * 4;
    }
  }
  for (int k = 0; k < L * D; k++) {
    Dir dir;
    // h's padding lanes must start at zero; r, z, n and inner are written in full.
    dir.h = make_buffer(P * hp, arena);
    for (Buffer* b : {&dir.r, &dir.z, &dir.n, &dir.inner}) *b = uninit_buffer(P * hp, arena);
    bytes += 5 * P * hp * 4;
    dirs.push_back(std::move(dir));
  }
}

std::vector<const float*> Tape::Impl::mask_rows() const {
  std::vector<const float*> rows;
  for (const Buffer& b : masks) rows.push_back(b.get());
  return rows;
}

int64_t Model::tape_floats(const SequenceBatch& batch, bool with_masks) const {
  const CallSizes sizes = check_batch(config_, batch);
  const Schedule sched(batch.steps, batch.batch, batch.lengths);
  const int L = config_.num_layers, D = config_.num_directions;
  const int64_t layer_out = batch.steps * batch.batch * D * config_.hidden_size;
  // (forward_train takes these, in its order.)
  int64_t total = Arena::floats_for(sizes.x);
  total += int64_t(L - 1) * (with_masks ? 2 : 1) * Arena::floats_for(layer_out);
  total += int64_t(L) * D * 5 * Arena::floats_for(sched.rows * hp_);
  return total;
}

}  // namespace fastgru
