// The FMA-peak probe: the machine's multiply-add throughput, which the benchmark quotes beside the
// GRU's own figures (the addon's fmaPeak export). Not used by the engine itself.
#pragma once

namespace fastgru {

struct KernelTable;
class ThreadPool;

// The machine's FMA throughput in GFLOP/s on `threads` threads (at most thread_cap()), from the
// kernel table's FMA loop run for about `seconds`: the ceiling the benchmark quotes beside the GRU's
// own figures.
double fma_peak_gflops(const KernelTable& kernels, ThreadPool& pool, int threads, double seconds);

}  // namespace fastgru
