// Scratch memory: the working buffers of a forward or backward call, leased from a small
// process-wide free list and given back at the end of the call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "gemm.h"

namespace fastgru {

// Working buffers of one call, kept between calls (and models) so a call does not pay for fresh
// pages: numbered slots of float buffers that only grow, and the GEMM workspaces of its threads.
struct Scratch {
  struct Slot {
    Buffer data;
    int64_t size = -1;
  };
  Slot slots[12];
  std::vector<GemmWorkspace> gemm;
  int64_t bytes() const {
    int64_t n = 0;
    for (const Slot& s : slots) n += std::max<int64_t>(0, s.size);
    for (const GemmWorkspace& w : gemm) n += w.a_size + w.b_size;
    return n * int64_t(sizeof(float));
  }
  // Slot i with room for n floats (contents undefined).
  float* get(int i, int64_t n) {
    Slot& s = slots[i];
    if (s.size < n) {
      s.data = uninit_buffer(n);
      s.size = n;
    }
    return s.data.get();
  }
};

// Takes a scratch set for one call and gives it back at the end of the call.
class ScratchLease {
 public:
  ScratchLease();
  ~ScratchLease();
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  Scratch& operator*() const { return *s_; }

 private:
  std::unique_ptr<Scratch> s_;
};

}  // namespace fastgru
