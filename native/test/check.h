// The tests' assertion helper: no framework, no network. A check that fails prints where and the
// values that disagree, and the executable exits non-zero at the end (so one run reports every
// failing case, not just the first). Each test prints one line per group it checked.
#pragma once

#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace check {

struct State {
  int64_t checks = 0;
  int64_t failures = 0;
  int64_t printed = 0;
};
inline State& state() {
  static State s;
  return s;
}

inline std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Records a failure; prints the first 40 in full so a broken kernel does not flood the log.
inline void fail(const char* file, int line, const std::string& message) {
  State& s = state();
  s.failures++;
  if (s.printed++ < 40) std::printf("FAIL %s:%d: %s\n", file, line, message.c_str());
  else if (s.printed == 41) std::printf("FAIL ... (further failures counted, not printed)\n");
  std::fflush(stdout);
}

inline bool expect(bool ok, const char* file, int line, const std::string& message) {
  state().checks++;
  if (!ok) fail(file, line, message);
  return ok;
}

inline bool pass() {
  state().checks++;
  return true;
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Same bits, except that any NaN equals any NaN (payloads are not part of the contract).
inline bool same(float a, float b) { return bits(a) == bits(b) || (std::isnan(a) && std::isnan(b)); }

// Index of the first element whose bits differ, or -1.
inline int64_t first_difference(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!same(a[i], b[i])) return i;
  return -1;
}
inline int64_t count_differences(const float* a, const float* b, int64_t n) {
  int64_t d = 0;
  for (int64_t i = 0; i < n; i++) d += !same(a[i], b[i]);
  return d;
}

inline bool expect_same_bits(const float* got, const float* want, int64_t n, const char* file, int line,
                             const std::string& what) {
  const int64_t i = first_difference(got, want, n);
  if (i < 0) return expect(true, file, line, what);
  return expect(false, file, line,
                format("%s: %" PRId64 " of %" PRId64 " floats differ; first at [%" PRId64 "]: %.9g (0x%08x) vs %.9g (0x%08x)",
                       what.c_str(), count_differences(got, want, n), n, i, got[i], bits(got[i]), want[i],
                       bits(want[i])));
}

// The largest |got - want| / max(floor, |want|) over n values (the JS tests' measure with floor 1);
// index of the largest in *at.
inline double max_rel_error(const float* got, const double* want, int64_t n, double floor, int64_t* at) {
  double worst = 0;
  *at = -1;
  for (int64_t i = 0; i < n; i++) {
    const double e = std::fabs(double(got[i]) - want[i]) / std::fmax(floor, std::fabs(want[i]));
    if (!(e <= worst)) {  // catches NaN too
      worst = std::isnan(e) ? INFINITY : e;
      *at = i;
    }
  }
  return worst;
}

inline int finish(const char* name) {
  const State& s = state();
  std::printf("%s: %" PRId64 " checks, %" PRId64 " failed\n", name, s.checks, s.failures);
  return s.failures ? 1 : 0;
}

// Deterministic random numbers (splitmix64): the tests never depend on a seed from outside.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(double(next() >> 11) * 0x1.0p-53); }
  int below(int n) { return int(next() % uint64_t(n)); }
  std::vector<float> floats(int64_t n, float lo, float hi) {
    std::vector<float> v(size_t(n > 0 ? n : 0));
    for (float& x : v) x = uniform(lo, hi);
    return v;
  }
};

}  // namespace check

// The message is formatted only when the check fails, so EXPECT is cheap inside sweeps.
#define EXPECT(cond, ...) \
  ((cond) ? ::check::pass() : ::check::expect(false, __FILE__, __LINE__, ::check::format(__VA_ARGS__)))
#define EXPECT_SAME_BITS(got, want, n, ...) \
  ::check::expect_same_bits((got), (want), (n), __FILE__, __LINE__, ::check::format(__VA_ARGS__))
