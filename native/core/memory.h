// The core's memory: 64-byte aligned float buffers (owned, or carved from an Arena someone else
// owns), huge-page advice for large fresh buffers, and NaN poisoning of uninitialised ones.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#if defined(_WIN32)
#include <malloc.h>  // _aligned_free
#endif

namespace fastgru {

// Frees what it owns; a buffer carved from an Arena owns nothing.
struct AlignedFree {
  bool owned = true;
  void operator()(float* p) const {
#if defined(_WIN32)
    // Windows' CRT has no aligned_alloc (free cannot release over-aligned blocks): uninit_buffer
    // takes them from _aligned_malloc, which only _aligned_free may release.
    if (owned) _aligned_free(p);
#else
    if (owned) std::free(p);
#endif
  }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

// Memory someone else owns (the addon hands in JavaScript Float32Arrays, which the garbage
// collector frees together with the object that uses them), handed out in 64-byte aligned slices.
class Arena {
 public:
  Arena(float* data, int64_t floats) : next_(data), end_(data + floats) {}
  // Floats an arena needs for slices of these sizes (each slice is aligned: up to 15 floats more).
  static int64_t floats_for(int64_t n) { return n + 16; }
  // A slice of n floats; zero-filled when `zero`. Throws ERR_INTERNAL when the arena is too small
  // (a sizing bug: the caller computed the total with floats_for).
  Buffer take(int64_t n, bool zero);

 private:
  float* next_;
  float* end_;
};

// Asks the OS to back the 2 MB-aligned interior of [p, p + n) with huge pages when it is first
// touched (Linux MADV_HUGEPAGE; a no-op elsewhere and for under 4 MB). For the large buffers the
// addon gets from JavaScript, which are fresh memory on every call: their first touch costs a page
// fault per 4 KB, some 0.7 ms per MB, inside the time loop. FASTGRU_HUGE_PAGES=0 turns it off.
void advise_huge_pages(float* p, int64_t n);

// A zero-filled, 64-byte aligned buffer of n floats (n may be 0), from `arena` when given.
Buffer make_buffer(int64_t n, Arena* arena = nullptr);
// The same, not zero-filled: for buffers written in full before they are read. Untouched pages
// cost nothing until the threads that fill them touch them.
Buffer uninit_buffer(int64_t n, Arena* arena = nullptr);

}  // namespace fastgru
