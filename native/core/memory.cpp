// The core's memory: aligned buffers, arena slices, huge-page advice and poisoning (memory.h).
#include "memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "error.h"

namespace fastgru {

Buffer Arena::take(int64_t n, bool zero) {
  const uintptr_t at = (reinterpret_cast<uintptr_t>(next_) + 63) & ~uintptr_t(63);
  float* p = reinterpret_cast<float*>(at);
  if (n < 0 || p + n > end_) throw Error("ERR_INTERNAL", "fastgru: internal error: an arena is too small");
  next_ = p + n;
  if (zero) std::memset(p, 0, sizeof(float) * size_t(n));
  return Buffer(p, AlignedFree{false});
}

// FASTGRU_POISON=1 (the test suites set it) fills uninitialised buffers with NaN, so a read of
// anything not written first shows up as NaN in a result instead of passing on zeros by luck.
static bool poison_enabled() {
  static const bool poison = [] {
    const char* v = std::getenv("FASTGRU_POISON");
    return v && *v && *v != '0';
  }();
  return poison;
}

Buffer uninit_buffer(int64_t n, Arena* arena) {
  if (arena) {
    Buffer b = arena->take(n, false);
    if (poison_enabled()) std::fill_n(b.get(), std::max<int64_t>(n, 0), std::numeric_limits<float>::quiet_NaN());
    return b;
  }
  const size_t bytes = (size_t(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
#if defined(_WIN32)
  // No std::aligned_alloc in Windows' CRT (MinGW-w64 included); AlignedFree releases it with
  // _aligned_free.
  void* p = _aligned_malloc(bytes, 64);
#else
  void* p = std::aligned_alloc(64, bytes);
#endif
  if (!p) throw std::bad_alloc();
  if (poison_enabled()) std::fill_n(static_cast<float*>(p), bytes / sizeof(float), std::numeric_limits<float>::quiet_NaN());
  return Buffer(static_cast<float*>(p));
}

void advise_huge_pages(float* p, int64_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool enabled = [] {
    const char* v = std::getenv("FASTGRU_HUGE_PAGES");
    return !(v && *v == '0');
  }();
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (!enabled || !p || n < 0 || uint64_t(n) * sizeof(float) < 2 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p + n)) & ~(kHuge - 1);
  // Only a hint: where the OS declines (huge pages disabled), the memory stays as it was.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

Buffer make_buffer(int64_t n, Arena* arena) {
  if (arena) return arena->take(n, true);
  Buffer b = uninit_buffer(n);
  std::memset(b.get(), 0, size_t(std::max<int64_t>(n, 1)) * sizeof(float));
  return b;
}

}  // namespace fastgru
