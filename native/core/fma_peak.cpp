// The FMA-peak probe (fma_peak.h): the kernel table's FMA loop on every thread for a while.
#include "fma_peak.h"

#include <atomic>
#include <chrono>
#include <cstdint>

#include "kernels/kernels.h"
#include "thread_pool.h"

namespace fastgru {

double fma_peak_gflops(const KernelTable& kt, ThreadPool& pool, int threads, double seconds) {
  using clock = std::chrono::steady_clock;
  // Calibrate one chunk to about a millisecond, then run chunks on every thread until time is up.
  int64_t chunk = 1 << 14;
  for (;;) {
    const auto t0 = clock::now();
    volatile float sink = kt.fma_loop(chunk);
    (void)sink;
    if (std::chrono::duration<double>(clock::now() - t0).count() > 1e-3 || chunk > (int64_t(1) << 30)) break;
    chunk *= 2;
  }
  // The peak of the CPUs this process may use: threads beyond them only take turns (and each one
  // the pool starts stays for the life of the process).
  threads = clamp_threads(threads);
  std::atomic<int64_t> rounds{0};
  const auto start = clock::now();
  auto body = [&](const Team&) {
    int64_t mine = 0;
    while (std::chrono::duration<double>(clock::now() - start).count() < seconds) {
      volatile float sink = kt.fma_loop(chunk);
      (void)sink;
      mine++;
    }
    rounds.fetch_add(mine);
  };
  pool.run(threads, body);
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  const double flops = double(rounds.load()) * double(chunk) * 12.0 * kt.width * 2.0;
  return flops / elapsed / 1e9;
}

}  // namespace fastgru
