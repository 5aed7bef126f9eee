// The process-wide free list of scratch sets (scratch.h).
#include "scratch.h"

#include <mutex>

namespace fastgru {

// Scratch sets are kept process-wide, not per model: training builds a new model after every
// optimizer step (the weights are repacked), and fresh working memory would cost page faults on
// every call. Up to four sets are kept (a caller, async calls, worker threads), each at most 256 MiB.
namespace {
std::mutex& scratch_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::unique_ptr<Scratch>>& scratch_free() {
  static auto* v = new std::vector<std::unique_ptr<Scratch>>();  // never destroyed: used until exit
  return *v;
}
}  // namespace

ScratchLease::ScratchLease() {
  std::lock_guard<std::mutex> lock(scratch_mutex());
  auto& free = scratch_free();
  if (free.empty()) {
    s_ = std::make_unique<Scratch>();
    return;
  }
  s_ = std::move(free.back());
  free.pop_back();
}

ScratchLease::~ScratchLease() {
  if (s_->bytes() > (int64_t(256) << 20)) return;
  std::lock_guard<std::mutex> lock(scratch_mutex());
  auto& free = scratch_free();
  if (free.size() < 4) free.push_back(std::move(s_));
}

}  // namespace fastgru
