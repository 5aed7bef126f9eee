// The shared setup of a call (schedule.h): the schedule's segments, row cuts, thread count and
// window size.
#include "schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

namespace fastgru {

Schedule::Schedule(int64_t T, int64_t B, const int32_t* lengths)
  : batch(B), perm(size_t(B)), len(size_t(B)) {
  std::iota(perm.begin(), perm.end(), 0);
  if (lengths) std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return lengths[a] > lengths[b]; });
  for (int64_t i = 0; i < B; i++) len[i] = lengths ? lengths[perm[i]] : int32_t(T);
  steps = B > 0 ? len[0] : 0;
  int64_t running = B, start = 0;
  while (start < steps) {
    while (running > 0 && len[running - 1] <= start) running--;
    const int64_t end = len[running - 1];  // the shortest running sequence ends the segment
    segments.push_back({start, running, rows});
    rows += (end - start) * running;
    start = end;
  }
  segments.push_back({steps, 0, rows});
}

// The groups' boundaries for steps [s0, s1) (a row's work: its steps in that range), in `cuts`,
// whose capacity is threads + 1 (nothing is allocated).
void row_cuts(const Schedule& sched, int threads, int64_t s0, int64_t s1, std::vector<int64_t>& cuts) {
  const int64_t B = sched.batch;
  const int parts = int(std::max<int64_t>(1, std::min<int64_t>(threads, B / kMR)));
  auto work = [&](int64_t i) { return std::max<int64_t>(0, std::min<int64_t>(sched.len[i], s1) - s0); };
  cuts.clear();
  cuts.push_back(0);
  int64_t total = 0;
  for (int64_t i = 0; i < B; i++) total += work(i);
  int64_t acc = 0;
  for (int64_t i = 0; i < B && int(cuts.size()) < parts; i++) {
    acc += work(i);
    const int64_t next = i + 1;
    if (next % kMR == 0 && acc * parts >= total * int64_t(cuts.size()) && next < B) cuts.push_back(next);
  }
  cuts.push_back(B);
}

// The row groups of every step, or none when the units are split.
std::vector<int64_t> row_groups(const Schedule& sched, int threads) {
  if (!split_rows(sched.batch, threads)) return {};
  std::vector<int64_t> cuts;
  cuts.reserve(size_t(threads) + 1);
  row_cuts(sched, threads, 0, sched.steps, cuts);
  return cuts;
}

// Threads worth waking for a call, at most the CPUs this process may use (thread_cap(): the cores,
// fewer under an affinity mask or a cgroup quota): about 4 MFLOP of work each (some 50-80 µs), since waking a
// thread and the waits between phases cost microseconds, and far more when the cores are
// oversubscribed and a woken thread waits for its turn. Results are the same bits for any count.
int threads_for(const GruConfig& c, int64_t rows, int threads, double factor) {
  double flops = 0;
  for (int l = 0; l < c.num_layers; l++) {
    const double I = l == 0 ? c.input_size : double(c.num_directions) * c.hidden_size;
    flops += 2.0 * double(rows) * c.num_directions * 3.0 * c.hidden_size * (I + c.hidden_size);
  }
  // FASTGRU_THREAD_WORK overrides the 4 MFLOP (the tests set 0, so small cases still run on every
  // thread they ask for, above the cap too, and the bitwise checks across thread counts check
  // something on a 2-CPU machine).
  static const double per_thread = [] {
    const char* v = std::getenv("FASTGRU_THREAD_WORK");
    return v && *v ? std::max(0.0, std::atof(v)) : 4e6;
  }();
  if (per_thread <= 0) return std::max(1, threads);
  // Nor more threads than the CPUs this process may use: more only take turns, spinning (threads:
  // 1024 on two cores would start 1023 threads; 64 threads in a container with a 2-CPU quota would
  // run a 32nd of the time each, and the team waits at every barrier for the throttled ones).
  const double worth = std::floor(factor * flops / per_thread);
  return int(std::max(1.0, std::min({double(clamp_threads(threads)), worth})));
}

// kWindowBytes, or FASTGRU_WINDOW_BYTES where set (the tests set a few KB, so that their small
// calls run many windows: the results are the same bits for any window).
int64_t window_bytes() {
  static const int64_t bytes = [] {
    const char* v = std::getenv("FASTGRU_WINDOW_BYTES");
    return v && *v ? std::max<int64_t>(1, std::atoll(v)) : kWindowBytes;
  }();
  return bytes;
}

CallPlan::CallPlan(const GruConfig& c, const Schedule& sched, int64_t steps, int64_t batch, bool batch_first, int hp,
                   int hn, int requested_threads, double factor)
    : T(steps), B(batch), P(sched.rows), S(sched.steps), H(c.hidden_size), D(c.num_directions), L(c.num_layers),
      Hp(hp), Hn(hn), threads(threads_for(c, sched.rows, requested_threads, factor)) {
  in0 = seq_layout(T, B, c.input_size, batch_first);
  out_last = seq_layout(T, B, int64_t(D) * H, batch_first);
  time_first = seq_layout(T, B, int64_t(D) * H, false);
  rows_split = split_rows(B, threads);
}

}  // namespace fastgru
