// The shared setup of a forward or backward call: the schedule of a batch's sequences, the row
// groups and thread count, the sequence layouts, and the one choice between the two ways the
// threads share a time loop (rows or units).
#pragma once

#include <cstdint>
#include <vector>

#include "gru.h"
#include "kernels/kernels.h"
#include "thread_pool.h"

namespace fastgru {

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The order in which a batch's sequences run, as PyTorch's packed sequences: sorted by length,
// longest first (stably), so the rows running at step s are the first active(s). Everything kept
// per step is stored packed: step s's rows start at offset(s). Its memory is per sequence, not per
// step: the steps where the running count changes (one per distinct length) mark segments of
// steps with the same count.
struct Schedule {
  int64_t steps = 0, batch = 0, rows = 0;
  std::vector<int32_t> perm, len;
  struct Segment {
    int64_t start, active, offset;  // from step `start` on, `active` rows a step, from packed row `offset`
  };
  std::vector<Segment> segments;  // by start; the last starts at `steps`, with no rows

  Schedule() = default;
  Schedule(int64_t T, int64_t B, const int32_t* lengths);
  int64_t bytes() const {
    return int64_t(perm.size() + len.size()) * int64_t(sizeof(int32_t)) + int64_t(segments.size() * sizeof(Segment));
  }
  // The index of step s's segment (0 <= s <= steps). Lengths are mostly all equal: one segment and
  // the end.
  size_t segment(int64_t s) const {
    size_t lo = 0, hi = segments.size() - 1;  // segments[lo].start <= s < segments[hi].start
    if (s >= segments[hi].start) return hi;
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      if (segments[mid].start <= s) lo = mid;
      else hi = mid;
    }
    return lo;
  }
  // Rows running at step s, 0 <= s <= steps (none at `steps`).
  int64_t active(int64_t s) const { return segments[segment(s)].active; }
  // The first packed row of step s, 0 <= s <= steps (rows at `steps`).
  int64_t offset(int64_t s) const {
    const Segment& g = segments[segment(s)];
    return g.offset + (s - g.start) * g.active;
  }
  // Step s < steps at once: its first packed row, its rows, and the rows of step s + 1.
  struct Step {
    int64_t offset, active, active_next;
  };
  Step step(int64_t s) const {
    const size_t k = segment(s);
    const Segment& g = segments[k];
    const bool same = s + 1 < segments[k + 1].start;
    return {g.offset + (s - g.start) * g.active, g.active, same ? g.active : segments[k + 1].active};
  }
  // The step of packed row p < rows.
  int64_t step_of_row(int64_t p) const {
    size_t lo = 0, hi = segments.size() - 1;  // segments[lo].offset <= p < segments[hi].offset
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      if (segments[mid].offset <= p) lo = mid;
      else hi = mid;
    }
    return segments[lo].start + (p - segments[lo].offset) / segments[lo].active;
  }
  // The time index row i visits at step s.
  int64_t time(int64_t i, int64_t s, bool reverse) const { return reverse ? len[i] - 1 - s : s; }
};

// Sequences never interact, so with rows enough the time loop splits by rows: contiguous groups of
// the length-sorted rows, one per thread, of about equal total length (the work), cut at
// multiples of kMR rows. Each group then runs every step alone, with no wait between steps. With
// too few rows per thread (under 8) the threads split each step's units instead, sharing the
// weights. One thread takes all rows as one group.
inline bool split_rows(int64_t batch, int threads) { return threads <= 1 || batch >= 8 * int64_t(threads); }

// The groups' boundaries for steps [s0, s1) (a row's work: its steps in that range), in `cuts`,
// whose capacity is threads + 1 (nothing is allocated).
void row_cuts(const Schedule& sched, int threads, int64_t s0, int64_t s1, std::vector<int64_t>& cuts);

// The row groups of every step, or none when the units are split.
std::vector<int64_t> row_groups(const Schedule& sched, int threads);

// Entries each member's slice of a per-member pointer array takes: B, rounded up to a cache line's
// worth, and one line more (the array itself need not start on a line), so that members
// refreshing their row pointers at every step never write the same line. With a few rows, the
// slices of two members would otherwise share one.
inline int64_t member_rows(int64_t B) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(void*));
  return round_up(B, kLine) + kLine;
}

// Row (t, b) of a sequence buffer sits at (t * ts + b * bs) * width.
struct Layout {
  int64_t ts, bs, width;
  int64_t row(int64_t t, int64_t b) const { return (t * ts + b * bs) * width; }
};

inline Layout seq_layout(int64_t T, int64_t B, int64_t width, bool batch_first) {
  return batch_first ? Layout{1, T, width} : Layout{B, 1, width};
}

// Threads worth waking for a call, at most the CPUs this process may use (thread_cap(): the cores,
// fewer under an affinity mask or a cgroup quota): about 4 MFLOP of work each (some 50-80 µs), since waking a
// thread and the waits between phases cost microseconds, and far more when the cores are
// oversubscribed and a woken thread waits for its turn. Results are the same bits for any count.
int threads_for(const GruConfig& c, int64_t rows, int threads, double factor);

// The input projection runs a window of steps at a time (design §4: one GEMM for many rows), into a
// buffer of at most this many bytes, or of one step's rows where those take more: projecting every
// row of a call at once took 3·Hp floats a row for the whole call (192 bytes a step for H = 1,
// 48 times the input: 384 MB for an input of 8 MB). Backward packs its weight gradients' operands
// in windows of about this size too. Every shape of the benchmark runs in one window.
constexpr int64_t kWindowBytes = int64_t(32) << 20;

// kWindowBytes, or FASTGRU_WINDOW_BYTES where set (the tests set a few KB, so that their small
// calls run many windows: the results are the same bits for any window).
int64_t window_bytes();

// What forward and backward set up alike for a call: its sizes (T steps, B sequences, P packed
// rows and S scheduled steps; H units, D directions, L layers, Hp = H rounded up to kGateBlock and
// Hn = Hp in whole panels), the layouts of x and output (in0, out_last) and of the layers between
// (time_first), the threads worth waking, and how they share the time loop (rows_split).
struct CallPlan {
  int64_t T, B, P, S;
  int H, D, L, Hp, Hn, threads;
  Layout in0, out_last, time_first;
  bool rows_split;
  // factor: the work a thread is worth waking for, relative to forward's (backward: 2).
  CallPlan(const GruConfig& c, const Schedule& sched, int64_t steps, int64_t batch, bool batch_first, int hp, int hn,
           int requested_threads, double factor);
};

// The one rows-or-units dispatch of a direction's time loop. Rows split: every row group
// [cuts[g], cuts[g + 1]) runs its steps alone from `first_step`, rows(item), handing rows to idle
// members (`use` counts the Handoff's uses upwards); units split: units() runs each step as phases
// over the step's units, every member sharing the step's weights.
template <class Rows, class Units>
void run_time_loop(const CallPlan& plan, const Team& team, Phases& phases, Handoff& handoff,
                   const std::vector<int64_t>& cuts, int64_t first_step, int64_t use, Rows rows, Units units) {
  if (plan.rows_split) handoff.run(phases, team, cuts, first_step, rows, use);
  else units();
}

}  // namespace fastgru
