#include "gru.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <thread>

#include "kernels/kernels.h"
#include "thread_pool.h"

namespace fastgru {

namespace {

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// a * b, or -1 when it overflows int64 (or either is negative).
int64_t mul_checked(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return -1;
  return a * b;
}

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
  Schedule(int64_t T, int64_t B, const int32_t* lengths) : batch(B), perm(size_t(B)), len(size_t(B)) {
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
bool split_rows(int64_t batch, int threads) { return threads <= 1 || batch >= 8 * int64_t(threads); }

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

// Entries each member's slice of a per-member pointer array takes: B, rounded up to a cache line's
// worth, and one line more (the array itself need not start on a line), so that members
// refreshing their row pointers at every step never write the same line. With a few rows, the
// slices of two members would otherwise share one.
int64_t member_rows(int64_t B) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(void*));
  return round_up(B, kLine) + kLine;
}

// Row (t, b) of a sequence buffer sits at (t * ts + b * bs) * width.
struct Layout {
  int64_t ts, bs, width;
  int64_t row(int64_t t, int64_t b) const { return (t * ts + b * bs) * width; }
};

Layout seq_layout(int64_t T, int64_t B, int64_t width, bool batch_first) {
  return batch_first ? Layout{1, T, width} : Layout{B, 1, width};
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

void check_config(const GruConfig& c) {
  if (c.input_size < 1) throw Error("ERR_OPTION", "inputSize: expected a positive integer, got " + std::to_string(c.input_size));
  if (c.hidden_size < 1) throw Error("ERR_OPTION", "hiddenSize: expected a positive integer, got " + std::to_string(c.hidden_size));
  if (c.num_layers < 1) throw Error("ERR_OPTION", "numLayers: expected a positive integer, got " + std::to_string(c.num_layers));
  if (c.num_directions != 1 && c.num_directions != 2)
    throw Error("ERR_OPTION", "numDirections: expected 1 or 2, got " + std::to_string(c.num_directions));
  const int64_t widest = mul_checked(3LL * c.hidden_size, std::max<int64_t>(c.input_size, int64_t(c.num_directions) * c.hidden_size));
  if (widest < 0 || widest > (int64_t(1) << 30))
    throw Error("ERR_OPTION", "hiddenSize: expected sizes whose largest weight holds at most 2^30 elements, got inputSize " +
                                  std::to_string(c.input_size) + ", hiddenSize " + std::to_string(c.hidden_size));
}

CallSizes check_batch(const GruConfig& c, const SequenceBatch& b) {
  if (b.steps < 0) throw Error("ERR_SHAPE", "x: expected a non-negative number of steps, got " + std::to_string(b.steps));
  if (b.batch < 0) throw Error("ERR_SHAPE", "x: expected a non-negative batch size, got " + std::to_string(b.batch));
  const int64_t D = c.num_directions;
  const int64_t tb = mul_checked(b.steps, b.batch);
  const int64_t x = mul_checked(tb, c.input_size);
  const int64_t out = mul_checked(tb, D * c.hidden_size);
  const int64_t h = mul_checked(mul_checked(int64_t(c.num_layers) * D, b.batch), c.hidden_size);
  // Internal buffers are padded to whole vectors and panels: keep every size far from overflow.
  const int64_t limit = int64_t(1) << 40;
  // Lengths, the schedule and the kernels' row counts are int32: steps and batch must fit.
  const int64_t int32_max = std::numeric_limits<int32_t>::max();
  if (b.steps > int32_max || b.batch > int32_max || x < 0 || out < 0 || h < 0 || x > limit || out > limit ||
      h > limit || mul_checked(tb, 3LL * round_up(c.hidden_size, 64)) > limit)
    throw Error("ERR_SHAPE", "x: expected sizes whose element counts fit in memory, got steps " + std::to_string(b.steps) +
                                 " and batch " + std::to_string(b.batch));
  if (b.lengths) {
    for (int64_t i = 0; i < b.batch; i++) {
      const int32_t L = b.lengths[i];
      if (L < 0 || L > b.steps)
        throw Error("ERR_ARGUMENT", "lengths[" + std::to_string(i) + "]: expected an integer in 0.." +
                                        std::to_string(b.steps) + ", got " + std::to_string(L));
    }
  }
  return {x, h, out};
}

// ---------------------------------------------------------------------------------------------
// Packed weights
// ---------------------------------------------------------------------------------------------

// A direction's weights, packed for every product forward and backward run. Gate columns are
// stored in an order that keeps one unit block's gates together:
//   reset_after: blocks of kGateBlock units, each [r z n] — a block's three gates sit together;
//   reset before: [r z] blocks for the first product, then n in natural order.
// The block is the same on every ISA, so the products that sum over gate columns (dX, dh) add
// in the same order everywhere.
struct Model::Direction {
  int input = 0;
  std::vector<int> gate_row;  // storage column -> PyTorch row (g·H + j), or -1 for padding
  PackedB wih, whh, whn;
  PackedB wih_t, whh_t, whrz_t, whn_t;
  Buffer bias_x, bias_hn;
  // Every pack, in the order of PackSpec::Slot (a form leaves the ones it does not use empty).
  std::array<PackedB*, 7> packs() { return {&wih, &wih_t, &whh, &whh_t, &whn, &whrz_t, &whn_t}; }
  std::array<const PackedB*, 7> packs() const { return {&wih, &wih_t, &whh, &whh_t, &whn, &whrz_t, &whn_t}; }
};

namespace {

// One packed copy of a direction's weights: pack_b(k, n) of `src` (W_ih, W_hh, or W_hh's n rows).
// Untransposed, packed column c is source row cmap[c] and k runs along it (the forward's x·Wᵀ);
// transposed, k runs over source rows kmap[k] and n along a row (the backward's dG·W). The maps
// are gate_row for gate columns and units for units.
struct PackSpec {
  enum Slot { kWih, kWihT, kWhh, kWhhT, kWhn, kWhrzT, kWhnT } dst;  // which of Direction's packs
  int k, n;
  enum Source { kIh, kHh, kHn } src;
  bool transposed;
  enum Map { kNone, kGateRows, kUnits } kmap, cmap;
};

// Every pack of a direction, in the order the constructor makes them and arena_floats sizes them.
std::vector<PackSpec> direction_packs(bool reset_after, int I, int H, int Hp, int Hn) {
  using P = PackSpec;
  std::vector<PackSpec> packs{{P::kWih, I, 3 * Hp, P::kIh, false, P::kNone, P::kGateRows},
                              {P::kWihT, 3 * Hp, I, P::kIh, true, P::kGateRows, P::kNone}};
  if (reset_after) {
    packs.push_back({P::kWhh, H, 3 * Hp, P::kHh, false, P::kNone, P::kGateRows});
    packs.push_back({P::kWhhT, 3 * Hp, Hn, P::kHh, true, P::kGateRows, P::kUnits});
  } else {
    packs.push_back({P::kWhh, H, 2 * Hp, P::kHh, false, P::kNone, P::kGateRows});
    packs.push_back({P::kWhn, H, Hn, P::kHn, false, P::kNone, P::kUnits});
    packs.push_back({P::kWhrzT, 2 * Hp, Hn, P::kHh, true, P::kGateRows, P::kUnits});
    packs.push_back({P::kWhnT, Hp, Hn, P::kHn, true, P::kUnits, P::kUnits});
  }
  return packs;
}

}  // namespace

Model::Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels)
    : Model(config, weights, kernels, nullptr) {}

int64_t Model::arena_floats(const GruConfig& c, const KernelTable& kt) {
  check_config(c);
  const int H = c.hidden_size, D = c.num_directions;
  const int Hp = int(round_up(H, kGateBlock)), Hn = int(kt.padded_width(Hp));
  int64_t total = 0;
  auto add = [&](int64_t n) { total += Arena::floats_for(n); };
  for (int index = 0; index < c.num_layers * D; index++) {
    const int I = index < D ? c.input_size : D * H;
    for (const PackSpec& p : direction_packs(c.reset_after, I, H, Hp, Hn)) add(packed_floats(kt, p.k, p.n));
    add(3 * Hp);  // bias_x and bias_hn, after the packs as the constructor takes them
    add(Hp);
  }
  return total;
}

Model::Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels,
             Arena* arena)
    : config_(config), kt_(kernels) {
  check_config(config);
  const int H = config.hidden_size, D = config.num_directions;
  if (int64_t(weights.size()) != int64_t(config.num_layers) * D)
    throw Error("ERR_STATE_DICT", "weights: expected " + std::to_string(config.num_layers * D) +
                                      " layer-directions, got " + std::to_string(weights.size()));
  hp_ = int(round_up(H, kGateBlock));
  // Products whose columns are units run in panels of 3W units; they cover the padded width, so
  // every chunk of units has its panel and the padding lanes get zeros, never stale memory.
  hn_ = int(kt_.padded_width(hp_));
  const int Hp = hp_, Hn = hn_;
  std::vector<int> units(static_cast<size_t>(Hn));  // column j of a units product: unit j, or padding
  for (int j = 0; j < Hn; j++) units[size_t(j)] = j < H ? j : -1;
  for (size_t index = 0; index < weights.size(); index++) {
    const DirectionWeights& w = weights[index];
    if (!w.w_ih || !w.w_hh || (config.bias && (!w.b_ih || !w.b_hh)))
      throw Error("ERR_STATE_DICT", "weights[" + std::to_string(index) + "]: a parameter is missing");
    auto d = std::make_unique<Direction>();
    const int I = index < size_t(D) ? config.input_size : D * H;
    d->input = I;
    d->gate_row.assign(size_t(3 * Hp), -1);
    for (int c = 0; c < 3 * Hp; c++) {
      int g, j;
      const int G = kGateBlock;
      if (config.reset_after) {
        g = (c % (3 * G)) / G;
        j = c / (3 * G) * G + c % G;
      } else if (c < 2 * Hp) {
        g = (c % (2 * G)) / G;
        j = c / (2 * G) * G + c % G;
      } else {
        g = 2;
        j = c - 2 * Hp;
      }
      d->gate_row[c] = j < H ? g * H + j : -1;
    }
    const int* maps[] = {nullptr, d->gate_row.data(), units.data()};  // by PackSpec::Map
    const float* sources[] = {w.w_ih, w.w_hh, w.w_hh + int64_t(2) * H * H};  // by PackSpec::Source
    const std::array<PackedB*, 7> slots = d->packs();
    for (const PackSpec& p : direction_packs(config.reset_after, I, H, Hp, Hn)) {
      const int64_t row = p.src == PackSpec::kIh ? I : H;  // a source row's length
      *slots[p.dst] = pack_b(kt_, p.k, p.n, sources[p.src], p.transposed ? row : 1, p.transposed ? 1 : row,
                             maps[p.kmap], maps[p.cmap], arena);
    }
    const int* rows = d->gate_row.data();
    d->bias_x = make_buffer(3 * Hp, arena);
    d->bias_hn = make_buffer(Hp, arena);
    if (config.bias) {
      for (int c = 0; c < 3 * Hp; c++) {
        const int row = rows[c];
        if (row < 0) continue;
        const bool n_gate = row >= 2 * H;
        d->bias_x[c] = (n_gate && config.reset_after) ? w.b_ih[row] : w.b_ih[row] + w.b_hh[row];
      }
      if (config.reset_after)
        for (int j = 0; j < H; j++) d->bias_hn[j] = w.b_hh[2 * H + j];
    }
    for (const PackedB* p : d->packs()) packed_bytes_ += p->view.floats() * int64_t(sizeof(float));
    dirs_.push_back(std::move(d));
  }
}

Model::~Model() = default;
const GruConfig& Model::config() const { return config_; }
const KernelTable& Model::kernels() const { return kt_; }
int64_t Model::packed_bytes() const { return packed_bytes_; }
int64_t Model::last_work_bytes() const { return work_bytes_.load(std::memory_order_relaxed); }

bool Model::same_packing(const Model& o) const {
  const GruConfig &a = config_, &b = o.config_;
  if (&kt_ != &o.kt_ || a.input_size != b.input_size || a.hidden_size != b.hidden_size ||
      a.num_layers != b.num_layers || a.num_directions != b.num_directions || a.reset_after != b.reset_after ||
      a.bias != b.bias || dirs_.size() != o.dirs_.size())
    return false;
  auto same = [](const float* x, const float* y, int64_t n) {
    return n <= 0 || (x && y && std::memcmp(x, y, size_t(n) * sizeof(float)) == 0);
  };
  for (size_t k = 0; k < dirs_.size(); k++) {
    const Direction &d = *dirs_[k], &e = *o.dirs_[k];
    const std::array<const PackedB*, 7> mine = d.packs(), theirs = e.packs();
    for (size_t i = 0; i < mine.size(); i++) {
      const Panels &p = mine[i]->view, &q = theirs[i]->view;
      const int64_t n = p.floats();
      if (n != q.floats() || !same(p.data, q.data, n)) return false;
    }
    if (!same(d.bias_x.get(), e.bias_x.get(), 3 * int64_t(hp_)) || !same(d.bias_hn.get(), e.bias_hn.get(), hp_)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tape
// ---------------------------------------------------------------------------------------------

struct Tape::Impl {
  int64_t steps = 0, batch = 0;
  bool batch_first = false;
  Schedule sched;
  Buffer x;                          // a copy of the layer-0 input, in its layout
  std::vector<Buffer> layer_inputs;  // layer l >= 1 reads layer_inputs[l - 1]: time-first, masked
  std::vector<Buffer> masks;         // num_layers - 1 copies, or none
  struct Dir {
    Buffer h, r, z, n, inner;        // [P, Hp] each, packed rows
  };
  std::vector<Dir> dirs;
  int64_t bytes = 0;
};

Tape::Tape(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tape::~Tape() = default;
int64_t Tape::bytes() const { return impl_->bytes; }

// ---------------------------------------------------------------------------------------------
// Scratch
// ---------------------------------------------------------------------------------------------

struct Model::Scratch {
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
class Model::ScratchLease {
 public:
  explicit ScratchLease(const Model& m) : m_(m), s_(m.take_scratch()) {}
  ~ScratchLease() { m_.give_back(std::move(s_)); }
  Scratch& operator*() const { return *s_; }

 private:
  const Model& m_;
  std::unique_ptr<Scratch> s_;
};

// Scratch sets are kept process-wide, not per model: training builds a new model after every
// optimizer step (the weights are repacked), and fresh working memory would cost page faults on
// every call. Up to four sets are kept (a caller, async calls, worker threads), each at most 256 MiB.
namespace {
std::mutex& scratch_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::unique_ptr<Model::Scratch>>& scratch_free() {
  static auto* v = new std::vector<std::unique_ptr<Model::Scratch>>();  // never destroyed: used until exit
  return *v;
}
}  // namespace

std::unique_ptr<Model::Scratch> Model::take_scratch() const {
  std::lock_guard<std::mutex> lock(scratch_mutex());
  auto& free = scratch_free();
  if (free.empty()) return std::make_unique<Scratch>();
  std::unique_ptr<Scratch> s = std::move(free.back());
  free.pop_back();
  return s;
}

void Model::give_back(std::unique_ptr<Scratch> scratch) const {
  if (scratch->bytes() > (int64_t(256) << 20)) return;
  std::lock_guard<std::mutex> lock(scratch_mutex());
  auto& free = scratch_free();
  if (free.size() < 4) free.push_back(std::move(scratch));
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

namespace {

// The input projection runs a window of steps at a time (design §4: one GEMM for many rows), into a
// buffer of at most this many bytes, or of one step's rows where those take more: projecting every
// row of a call at once took 3·Hp floats a row for the whole call (192 bytes a step for H = 1,
// 48 times the input: 384 MB for an input of 8 MB). Backward packs its weight gradients' operands
// in windows of about this size too. Every shape of the benchmark runs in one window.
constexpr int64_t kWindowBytes = int64_t(32) << 20;

// kWindowBytes, or FASTGRU_WINDOW_BYTES where set (the tests set a few KB, so that their small
// calls run many windows: the results are the same bits for any window).
int64_t window_bytes() {
  static const int64_t bytes = [] {
    const char* v = std::getenv("FASTGRU_WINDOW_BYTES");
    return v && *v ? std::max<int64_t>(1, std::atoll(v)) : kWindowBytes;
  }();
  return bytes;
}

}  // namespace

// One forward call's working memory, all allocated before the parallel region. In bytes, with
// Hp = H rounded up to kGateBlock, pw(k) k rounded up to whole panels, Hn = pw(Hp),
// gh_ld = pw(3Hp) (reset before: pw(2Hp)), n the threads, P and S the schedule's rows and steps:
//   window  W = min(P, w·B) rows, w = max(1, ⌊window_bytes() / (12·Hp·B)⌋) steps:
//           4·3Hp·W (their projection) + 8·W (their input rows)
//   batch   4·B·gh_ld (the recurrent product) + 4·B·Hn reset before (its n part); in inference
//           also 4·2B·Hp (the state) + 4·2B·Hp reset before (the step's z and r ⊙ h), which the
//           tape holds in training; 8·B (final rows) + 8·n·(⌈B⌉₈ + 8) (output rows per thread);
//           with the rows split (B >= 8n or n = 1) 8·n·(n + 1) (each thread's group cuts)
//   layers  inference with L > 1: 4·T·B·D·H per buffer of a layer's output, min(L - 1, 2) of them
//   phases  Phases::bytes_for(n, phase_count()): at most 2·Phases::kEpoch slots
//   plus the schedule: 8·B + 24·(distinct lengths + 1).
// Nothing else grows with T: over a long, thin sequence the working memory is a constant beside
// the output. (The Run itself, with its Handoff, is a fixed size.)
struct Model::Run {
  const Model& m;
  const KernelTable& kt;
  int64_t T, B, P, S;
  int H, D, L, Hp, Hn, threads;
  bool batch_first;
  const Schedule& sched;
  Tape::Impl* tape;
  const float* x;
  const float* h0;
  const float* const* masks;
  float* output;
  float* hidden;
  Layout in0, out_last, time_first;
  int64_t gh_ld = 0;  // the recurrent product's row: its [r z n] or [r z] columns in whole panels
  int64_t window_steps = 1, window_rows = 0, windows = 1;
  float *gx = nullptr, *gh = nullptr, *gh_n = nullptr, *z_step = nullptr, *rh = nullptr, *state = nullptr;
  float* inter[2] = {nullptr, nullptr};
  std::vector<const float*> x_rows;        // projection rows of the current window, packed order
  std::vector<float*> final_rows;          // where each row's final state goes
  std::vector<float*> out_rows;            // per thread, B entries (at member_rows(B) apart)
  bool rows_split = false;                 // row groups, else the units of each step split
  std::vector<std::vector<int64_t>> cuts;  // per thread: the row groups of the current window
  Handoff handoff;                         // for the row groups; a use per layer, direction and window
  int64_t bytes = 0;                       // the working memory above

  Run(const Model& model, const SequenceBatch& in, const Schedule& s, Tape::Impl* tp, int nthreads, Scratch& sc)
      : m(model), kt(model.kt_), T(in.steps), B(in.batch), P(s.rows), S(s.steps), H(model.config_.hidden_size),
        D(model.config_.num_directions), L(model.config_.num_layers), Hp(model.hp_),
        Hn(model.hn_), threads(nthreads), batch_first(in.batch_first), sched(s), tape(tp), x(in.x), h0(in.h0),
        masks(nullptr), output(nullptr), hidden(nullptr) {
    in0 = seq_layout(T, B, model.config_.input_size, batch_first);
    out_last = seq_layout(T, B, int64_t(D) * H, batch_first);
    time_first = seq_layout(T, B, int64_t(D) * H, false);
    window_steps = std::max<int64_t>(1, window_bytes() / (int64_t(sizeof(float)) * 3 * Hp * std::max<int64_t>(B, 1)));
    window_rows = std::min(P, window_steps * B);
    windows = std::max<int64_t>(1, (S + window_steps - 1) / window_steps);
    auto take = [&](int slot, int64_t n) {
      bytes += n * int64_t(sizeof(float));
      return sc.get(slot, n);
    };
    // Every buffer here is written before it is read (the state's padding at the setup).
    gx = take(0, window_rows * 3 * Hp);
    gh_ld = kt.padded_width(int64_t(m.config_.reset_after ? 3 : 2) * Hp);
    gh = take(1, B * gh_ld);
    if (!m.config_.reset_after) {
      gh_n = take(2, B * Hn);
      if (!tape) {
        z_step = take(3, B * Hp);
        rh = take(4, B * Hp);
      }
    }
    if (!tape) {
      state = take(5, 2 * B * Hp);
      if (L > 1) {
        inter[0] = take(6, T * B * D * H);
        if (L > 2) inter[1] = take(7, T * B * D * H);
      }
    }
    x_rows.resize(size_t(window_rows));
    final_rows.resize(size_t(B));
    out_rows.resize(size_t(member_rows(B) * threads));
    bytes += int64_t(sizeof(void*)) * (window_rows + B + member_rows(B) * threads);
    rows_split = split_rows(B, threads);
    if (rows_split) {
      cuts.resize(size_t(threads));
      for (std::vector<int64_t>& c : cuts) c.reserve(size_t(threads) + 1);
      bytes += int64_t(sizeof(int64_t)) * threads * (threads + 1);
    }
  }

  // Phases this call runs (an upper bound): per direction and window a setup, a projection, and
  // either one phase for the row groups or at most two per step; per layer the dropout; and the
  // zeroing of the padding. (With no steps there is one window, and the row groups take a phase.)
  int64_t phase_count() const { return int64_t(L) * D * (3 * windows + 2 * S) + L + 1; }

  // The chunks of the projection of `rows` rows: row blocks of kMC by groups of W_ih's panels,
  // enough chunks to feed every member. Chunk c is row block c % row_blocks of panel group
  // c / row_blocks, so a member's share (a contiguous range of chunks, see Phases) walks down the
  // rows with one group of panels. When W_ih is too large to stay in an L2 cache beside the rest
  // (over 512 KB packed), there is a group per member: each keeps its part of W_ih in its own L2
  // instead of streaming all of it from L3 for every row block (measured on large, in-process
  // A/B: 1-4% faster forward).
  struct Grid {
    int64_t row_blocks;
    int panel_groups, panels;
    int chunks() const { return int(row_blocks * panel_groups); }
  };
  Grid projection_grid(const Panels& wih, int64_t rows) const {
    const int64_t row_blocks = (rows + kMC - 1) / kMC;
    if (row_blocks == 0) return {0, 1, wih.panels};
    const int64_t want = 4 * int64_t(threads);
    int64_t groups = std::max<int64_t>(1, (want + row_blocks - 1) / row_blocks);
    constexpr int64_t kL2Share = int64_t(512) << 10;  // bytes of W_ih that stay in L2 beside the rest
    if (wih.floats() * int64_t(sizeof(float)) > kL2Share) groups = std::max<int64_t>(groups, threads);
    return {row_blocks, int(std::min<int64_t>(wih.panels, groups)), wih.panels};
  }

  // The body every member runs: layers, directions and steps as phases of chunks.
  void forward(const Team& team, Phases& phases) {
    // Steps past a sequence's length output zeros (packed-sequence padding); nothing else writes them.
    phases.run(team, int(B), [&](int i) {
      for (int64_t t = sched.len[i]; t < T; t++)
        std::memset(output + out_last.row(t, sched.perm[i]), 0, sizeof(float) * D * H);
    });
    for (int l = 0; l < L; l++) {
      const float* input = l == 0 ? x : (tape ? tape->layer_inputs[l - 1].get() : inter[(l - 1) % 2]);
      const Layout in_layout = l == 0 ? in0 : time_first;
      const bool last = l == L - 1;
      float* out = last ? output : (tape ? tape->layer_inputs[l].get() : inter[l % 2]);
      const Layout out_layout = last ? out_last : time_first;
      for (int d = 0; d < D; d++) direction(team, phases, l, d, input, in_layout, out, out_layout);
      if (!last && masks) {
        const float* mask = masks[l];
        const int64_t n = T * B * D * H, chunk = 1 << 14;
        phases.run(team, int((n + chunk - 1) / chunk), [&](int c) {
          for (int64_t e = c * chunk, end = std::min(n, e + chunk); e < end; e++) out[e] *= mask[e];
        });
      }
    }
    phases.finish(team);
  }

  void direction(const Team& team, Phases& phases, int l, int d, const float* input, const Layout& in_layout,
                 float* out, const Layout& out_layout) {
    const Direction& dir = *m.dirs_[size_t(l * D + d)];
    const bool reverse = d == 1;
    const int64_t slot = int64_t(l * D + d) * B * H;
    Tape::Impl::Dir* td = tape ? &tape->dirs[size_t(l * D + d)] : nullptr;
    float* h_first = td ? td->h.get() : state;
    float** rows_out = out_rows.data() + member_rows(B) * team.id();
    const bool after = m.config_.reset_after;
    const int blocks = Hp / kGateBlock;
    // The first product's columns: [r z n] (reset after) or [r z] per gate block, in panels of
    // pw that need not end where a block ends ([r z] is 32 columns a block). Gate blocks [b0, b1)
    // take panels [panel_of(b0), panel_of(b1)); b0 must be a multiple of `align` blocks, where a
    // panel starts too, so that no panel is in two chunks of the units split.
    const int block_cols = (after ? 3 : 2) * kGateBlock;
    const int pw = kt.panel_width();  // every product's panels
    const int align = pw / std::gcd(pw, block_cols);
    auto panel_of = [&](int b) { return (b * block_cols + pw - 1) / pw; };
    const int n_panels = Hn / pw;
    int64_t filled = -1, filled_r0 = -1;  // the step and first row rows_out holds
    int64_t window_base = 0;              // the packed row of the window's first row in gx and x_rows

    // Step s for rows [r0, r1): the pointers every kernel of the step starts from.
    auto rows_of = [&](int64_t s, int64_t r0, int64_t r1) {
      const Schedule::Step at = sched.step(s);
      const int64_t base = at.offset, next = at.offset + at.active;
      GateStep g{};
      g.rows = int(r1 - r0);
      g.rows_next = int(std::max<int64_t>(0, std::min(at.active_next, r1) - r0));
      g.H = H;
      g.gx = gx + (base - window_base + r0) * 3 * Hp;
      g.gx_ld = 3 * Hp;
      g.n_col = 2 * Hp;
      g.bias_x = dir.bias_x.get();
      g.bias_hn = dir.bias_hn.get();
      g.h = (td ? td->h.get() + base * Hp : state + (s & 1) * B * Hp) + r0 * Hp;
      g.h_ld = Hp;
      g.h_next = (td ? td->h.get() + next * Hp : state + ((s + 1) & 1) * B * Hp) + r0 * Hp;
      g.h_next_ld = Hp;
      g.out = rows_out;
      g.final_h = final_rows.data() + r0;
      g.tape_ld = Hp;
      if (td) {
        g.r = td->r.get() + (base + r0) * Hp;
        g.z = td->z.get() + (base + r0) * Hp;
        g.n = td->n.get() + (base + r0) * Hp;
        g.inner = td->inner.get() + (base + r0) * Hp;
      }
      g.z_step = td ? g.z : z_step + r0 * Hp;
      g.rh = td ? g.inner : rh + r0 * Hp;
      g.step_ld = Hp;
      if (filled != s || filled_r0 != r0) {
        for (int64_t i = r0; i < r1; i++)
          rows_out[i - r0] = out + out_layout.row(sched.time(i, s, reverse), sched.perm[i]) + int64_t(d) * H;
        filled = s;
        filled_r0 = r0;
      }
      return g;
    };
    // The recurrent product of gate blocks [b0, b1) and their gate math (reset before: r, z and r ⊙ h).
    auto first = [&](const GateStep& g, int64_t r0, int b0, int b1) {
      Rows ha;
      ha.base = g.h;
      ha.ld = Hp;
      MutRows gc;
      gc.ld = gh_ld;
      gc.base = gh + r0 * gc.ld;
      gemm_packed(kt, g.rows, ha, 1, dir.whh.view, panel_of(b0), panel_of(b1), gc, false);
      GateStep gb = g;
      gb.gh = gc.base;
      gb.gh_ld = gc.ld;
      gb.u0 = b0 * kGateBlock;
      gb.u1 = b1 * kGateBlock;  // whole blocks: the padding lanes are computed too (all zeros)
      if (after) kt.gates_after(gb);
      else kt.gates_before_rz(gb);
    };
    // Reset before: the candidate's product on r ⊙ h for unit panels [q0, q1), and the new state.
    auto second = [&](const GateStep& g, int64_t r0, int q0, int q1) {
      Rows ra;
      ra.base = g.rh;
      ra.ld = Hp;
      MutRows nc;
      nc.base = gh_n + r0 * Hn;
      nc.ld = Hn;
      gemm_packed(kt, g.rows, ra, 1, dir.whn.view, q0, q1, nc, false);
      GateStep gb = g;
      gb.gh = nc.base;
      gb.gh_ld = Hn;
      gb.u0 = q0 * pw;
      gb.u1 = std::min(q1 * pw, Hp);
      if (gb.u0 < gb.u1) kt.gates_before_n(gb);
    };
    // Units split (too few rows to share): every step is a phase over gate blocks (and, reset
    // before, a second phase over unit panels); the members share each step's weights.
    // A chunk holds at least as many panels as the widest tile for this few rows, so a single row
    // still runs on the tiles that keep 12 accumulators busy; beyond that, about eight chunks per
    // member; and a whole number of `align` blocks.
    const int mr = int(std::max<int64_t>(1, std::min<int64_t>(B, kMR)));
    const int n_group = kt.tile_panels[mr - 1];
    const int wide = std::max({1, std::min(4, blocks / (8 * threads)), (n_group * pw + block_cols - 1) / block_cols});
    const int group = int(round_up(wide, align));
    // Setup chunks of the projection's row pointers: whole steps, some 1024 rows.
    const int64_t setup_steps = std::max<int64_t>(1, 1024 / std::max<int64_t>(B, 1));
    const Grid whole = projection_grid(dir.wih.view, window_rows);

    for (int64_t w = 0; w < windows; w++) {
      const int64_t s0 = w * window_steps, s1 = std::min(S, s0 + window_steps);
      window_base = sched.offset(s0);
      const int64_t rows = sched.offset(s1) - window_base;
      // Setup: the window's projection rows in packed order and, in the first window, the state
      // before step 0 and where each sequence's final state goes (chunks of 16 sequences).
      const int64_t row_chunks = (s1 - s0 + setup_steps - 1) / setup_steps;
      const int64_t init_chunks = w == 0 ? (B + 15) / 16 : 0;
      phases.run(team, int(row_chunks + init_chunks), [&](int c) {
        if (c < row_chunks) {
          for (int64_t s = s0 + c * setup_steps, end = std::min(s1, s + setup_steps); s < end; s++) {
            const Schedule::Step at = sched.step(s);
            for (int64_t i = 0; i < at.active; i++)
              x_rows[size_t(at.offset - window_base + i)] = input + in_layout.row(sched.time(i, s, reverse), sched.perm[i]);
          }
          return;
        }
        for (int64_t i = (c - row_chunks) * 16, end = std::min(B, i + 16); i < end; i++) {
          const int64_t b = sched.perm[i];
          final_rows[i] = hidden + slot + b * H;
          const float* src = h0 ? h0 + slot + b * H : nullptr;
          float* dst = sched.len[i] > 0 ? h_first + i * Hp : final_rows[i];
          if (src) std::memcpy(dst, src, sizeof(float) * H);
          else std::memset(dst, 0, sizeof(float) * H);
          // The state's padding lanes stay zero from here on (padded units compute 0.5 · 0).
          if (sched.len[i] > 0) std::memset(dst + H, 0, sizeof(float) * (Hp - H));
        }
      });
      // The last window may be shorter: its grid then has fewer row blocks.
      const Grid grid = rows == window_rows ? whole : projection_grid(dir.wih.view, rows);
      phases.run(team, grid.chunks(), [&](int c) {
        const int64_t r0 = (c % grid.row_blocks) * kMC, r1 = std::min(rows, r0 + kMC);
        const int g = int(c / grid.row_blocks);
        Rows a;
        a.ptrs = x_rows.data() + r0;
        MutRows out_c;
        out_c.base = gx + r0 * 3 * Hp;
        out_c.ld = 3 * Hp;
        gemm_packed(kt, r1 - r0, a, 1, dir.wih.view, int(int64_t(grid.panels) * g / grid.panel_groups),
                    int(int64_t(grid.panels) * (g + 1) / grid.panel_groups), out_c, false);
      });

      if (rows_split) {
        // Rows split: sequences never interact, so each group of rows runs the window's steps on
        // its own, with all the weights and no wait between steps. A member that runs out of work
        // takes the back half of a busy member's rows at its next step (never fewer than kMR rows
        // each).
        auto run_rows = [&](const Handoff::Item& item) {
          const int64_t r0 = item.r0;
          int64_t r1 = item.r1;
          for (int64_t s = item.step; s < s1; s++) {
            const Schedule::Step at = sched.step(s);
            if (at.active <= r0) break;
            const GateStep g = rows_of(s, r0, std::min(r1, at.active));
            first(g, r0, 0, blocks);
            if (!after) second(g, r0, 0, n_panels);
            if (s + 1 < s1) r1 = handoff.give_half(r0, r1, at.active_next, s + 1, kMR);
          }
        };
        std::vector<int64_t>& mine = cuts[size_t(team.id())];
        row_cuts(sched, threads, s0, s1, mine);
        handoff.run(phases, team, mine, s0, run_rows, (int64_t(l) * D + d) * windows + w);
        continue;
      }
      for (int64_t s = s0; s < s1; s++) {
        const int64_t bt = sched.active(s);
        phases.run(team, int((blocks + group - 1) / group), [&](int c) {
          first(rows_of(s, 0, bt), 0, c * group, std::min(blocks, c * group + group));
        });
        if (!after) {
          phases.run(team, int((n_panels + n_group - 1) / n_group), [&](int c) {
            second(rows_of(s, 0, bt), 0, c * n_group, std::min(n_panels, c * n_group + n_group));
          });
        }
      }
    }
  }
};

void Model::forward(const SequenceBatch& batch, float* output, float* hidden, ThreadPool& pool, int threads) const {
  check_batch(config_, batch);
  const Schedule sched(batch.steps, batch.batch, batch.lengths);
  ScratchLease scratch(*this);
  Run run(*this, batch, sched, nullptr, threads_for(config_, sched.rows, threads, 1), *scratch);
  run.output = output;
  run.hidden = hidden;
  Phases phases(run.threads, run.phase_count());
  work_bytes_.store(run.bytes + phases.bytes() + sched.bytes(), std::memory_order_relaxed);
  auto body = [&](const Team& team) { run.forward(team, phases); };
  pool.run(run.threads, body);
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

std::unique_ptr<Tape> Model::forward_train(const SequenceBatch& batch, const float* const* dropout_masks, float* output,
                                           float* hidden, ThreadPool& pool, int threads, Arena* arena) const {
  const CallSizes sizes = check_batch(config_, batch);
  auto tape = std::make_unique<Tape::Impl>();
  tape->steps = batch.steps;
  tape->batch = batch.batch;
  tape->batch_first = batch.batch_first;
  tape->sched = Schedule(batch.steps, batch.batch, batch.lengths);
  const int64_t P = tape->sched.rows;
  const int L = config_.num_layers, D = config_.num_directions;
  const int64_t layer_out = batch.steps * batch.batch * D * config_.hidden_size;
  tape->x = uninit_buffer(sizes.x, arena);
  if (sizes.x) std::memcpy(tape->x.get(), batch.x, sizeof(float) * sizes.x);
  tape->bytes += sizes.x * 4;
  for (int l = 0; l + 1 < L; l++) {
    tape->layer_inputs.push_back(uninit_buffer(layer_out, arena));
    tape->bytes += layer_out * 4;
    if (dropout_masks) {
      tape->masks.push_back(uninit_buffer(layer_out, arena));
      if (layer_out) std::memcpy(tape->masks.back().get(), dropout_masks[l], sizeof(float) * layer_out);
      tape->bytes += layer_out * 4;
    }
  }
  for (int k = 0; k < L * D; k++) {
    Tape::Impl::Dir dir;
    // h's padding lanes must start at zero; r, z, n and inner are written in full.
    dir.h = make_buffer(P * hp_, arena);
    for (Buffer* b : {&dir.r, &dir.z, &dir.n, &dir.inner}) *b = uninit_buffer(P * hp_, arena);
    tape->bytes += 5 * P * hp_ * 4;
    tape->dirs.push_back(std::move(dir));
  }
  std::vector<const float*> masks;
  for (const Buffer& b : tape->masks) masks.push_back(b.get());
  SequenceBatch in = batch;
  in.x = tape->x.get();
  ScratchLease scratch(*this);
  Run run(*this, in, tape->sched, tape.get(), threads_for(config_, tape->sched.rows, threads, 1), *scratch);
  run.output = output;
  run.hidden = hidden;
  run.masks = masks.empty() ? nullptr : masks.data();
  Phases phases(run.threads, run.phase_count());
  work_bytes_.store(run.bytes + phases.bytes() + tape->sched.bytes(), std::memory_order_relaxed);
  auto body = [&](const Team& team) { run.forward(team, phases); };
  pool.run(run.threads, body);
  return std::unique_ptr<Tape>(new Tape(std::move(tape)));
}

// ---------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------

// One backward call's working memory. In bytes, with Hp, pw and Hn as for Run, n the threads, P
// and S the tape's rows and steps, and ld_x = pw(max(I, D·H)), the widest layer input:
//   per row   4·3Hp·P (the gradient of the gate inputs) + 4·3Hp·P resetAfter (of W_hh's product):
//             the weight gradients sum them over every row in order, after the time loop, as the
//             tape's rows (5·Hp floats) are kept for it
//   window    K = min(P, max(kKC, ⌊window_bytes() / (4·(ld_x + m·pw(H)))⌋ rounded down to kKC))
//             rows, m = 1 (2 reset before): 4·K·(ld_x + m·pw(H)), their packed x, h (and r ⊙ h)
//   batch     4·B·Hn (dh) + 4·B·Hn reset before (d(r ⊙ h)); 8·n·(⌈B⌉₈ + 8) (output rows per
//             thread); with the rows split 8·n·(n + 1)
//   weights   4·3Hp·(ld_x + Hn) (the gradients before unpermuting) + 8·6Hp (the bias sums)
//   threads   n·(4·kMC·kKC + 4·kKC·max(ld_x, Hn)) (the GEMM workspaces) + 4·n·kMC·ld_x (a block
//             of dX each) + 8·n·kKC (a block's input rows each)
//   layers    L > 1: 4·T·B·D·H per buffer of a layer's input gradient, min(L - 1, 2) of them
//   phases    Phases::bytes_for(n, phase_count())
struct Model::Backward {
  const KernelTable& kt;
  const GruConfig& cfg;
  const Tape::Impl& tape;
  const Schedule& sched;
  int64_t T, B, P, S;
  int H, D, L, Hp, Hn, threads;
  const float* d_output;
  const float* d_hidden;
  float* d_input;
  float* d_h0;
  const std::vector<DirectionGradients>& grads;
  Layout in0, out_last, time_first;
  float *dgx = nullptr, *dgh = nullptr, *dh = nullptr, *drh = nullptr, *dxp = nullptr, *wgrad_x = nullptr,
        *wgrad_h = nullptr, *packed_x = nullptr, *packed_h = nullptr, *packed_rh = nullptr;
  std::vector<double> bias_sums;  // [2, 3Hp]: each thread sums its own columns
  float* d_layer[2] = {nullptr, nullptr};
  int64_t ld_x = 0;
  int64_t window_rows = 0, windows = 1;  // the weight gradients' rows packed at a time (kKC multiple)
  std::vector<const float*> x_rows;     // per thread, kKC entries: a block's input rows
  std::vector<const float*> dout_rows;  // per thread, B entries (at member_rows(B) apart)
  bool rows_split = false;
  std::vector<int64_t> groups;          // row groups when the rows are split, else empty
  Handoff handoff;                      // for the row groups; a use per layer and direction
  std::vector<GemmWorkspace>& ws;
  int64_t bytes = 0;                    // the working memory above

  Backward(const KernelTable& k, const GruConfig& c, const Tape::Impl& t, int hp, int hn, int nthreads,
           const float* dout, const float* dhid, float* din, float* dh0, const std::vector<DirectionGradients>& g,
           Scratch& sc)
      : kt(k), cfg(c), tape(t), sched(t.sched), T(t.steps), B(t.batch), P(t.sched.rows), S(t.sched.steps),
        H(c.hidden_size), D(c.num_directions), L(c.num_layers), Hp(hp), Hn(hn), threads(nthreads),
        d_output(dout), d_hidden(dhid), d_input(din), d_h0(dh0), grads(g), ws(sc.gemm) {
    in0 = seq_layout(T, B, c.input_size, t.batch_first);
    out_last = seq_layout(T, B, int64_t(D) * H, t.batch_first);
    time_first = seq_layout(T, B, int64_t(D) * H, false);
    const int widest_in = std::max(c.input_size, D * H);
    ld_x = kt.padded_width(widest_in);
    const int64_t packed_row = ld_x + kt.padded_width(H) * (c.reset_after ? 1 : 2);  // floats a row packs to
    window_rows = std::max<int64_t>(kKC, window_bytes() / (int64_t(sizeof(float)) * packed_row) / kKC * kKC);
    window_rows = std::min(P, window_rows);
    windows = P > 0 ? (P + window_rows - 1) / window_rows : 1;
    auto take = [&](int slot, int64_t n) {
      bytes += n * int64_t(sizeof(float));
      return sc.get(slot, n);
    };
    // All written before they are read (dh row by row at each direction's setup).
    dgx = take(0, P * 3 * Hp);
    if (c.reset_after) dgh = take(1, P * 3 * Hp);
    else drh = take(1, B * Hn);
    dh = take(2, B * Hn);
    dxp = take(3, int64_t(threads) * kMC * ld_x);
    wgrad_x = take(4, 3 * Hp * ld_x);
    wgrad_h = take(5, 3 * Hp * Hn);
    packed_x = take(8, packed_floats(k, window_rows, widest_in));
    packed_h = take(9, packed_floats(k, window_rows, H));
    if (!c.reset_after) packed_rh = take(10, packed_floats(k, window_rows, H));
    bias_sums.assign(size_t(6 * Hp), 0.0);
    bytes += int64_t(sizeof(double)) * 6 * Hp;
    if (L > 1) {
      d_layer[0] = take(6, T * B * D * H);
      if (L > 2) d_layer[1] = take(7, T * B * D * H);
    }
    x_rows.resize(size_t(kKC) * threads);
    dout_rows.resize(size_t(member_rows(B) * threads));
    bytes += int64_t(sizeof(void*)) * (int64_t(kKC) * threads + member_rows(B) * threads);
    groups = row_groups(sched, threads);
    rows_split = !groups.empty();
    if (rows_split) bytes += int64_t(sizeof(int64_t)) * threads * (threads + 1);
    if (ws.size() < size_t(threads)) ws.resize(size_t(threads));
    const int64_t a_floats = gemm_general_a_floats(), b_floats = gemm_general_b_floats(kt, int(std::max<int64_t>(ld_x, Hn)));
    for (GemmWorkspace& w : ws) w.reserve(a_floats, b_floats);
    bytes += int64_t(sizeof(float)) * threads * (a_floats + b_floats);
  }

  // Per layer the zeroing and the dropout; per direction the setup, at most two phases a step and
  // one more, dh0, two a window of the weight gradients, and dX.
  int64_t phase_count() const { return int64_t(L) * (2 + int64_t(D) * (2 * S + 4 + 2 * windows)); }

  // Runs a phase over [0, n) in chunks of `grain` items: work(begin, end).
  template <class Work>
  void ranges(const Team& team, Phases& phases, int64_t n, int64_t grain, Work work) {
    phases.run(team, int((n + grain - 1) / grain), [&](int c) { work(c * grain, std::min(n, (c + 1) * grain)); });
  }

  void run(const Team& team, Phases& phases, const std::vector<std::unique_ptr<Direction>>& dirs) {
    for (int l = L - 1; l >= 0; l--) {
      const float* d_out = l == L - 1 ? d_output : d_layer[l % 2];
      const Layout out_layout = l == L - 1 ? out_last : time_first;
      float* d_in = l == 0 ? d_input : d_layer[(l - 1) % 2];
      const Layout in_layout = l == 0 ? in0 : time_first;
      const float* input = l == 0 ? tape.x.get() : tape.layer_inputs[l - 1].get();
      const int64_t n_in = T * B * in_layout.width;
      ranges(team, phases, n_in, 1 << 14, [&](int64_t e0, int64_t e1) {
        std::memset(d_in + e0, 0, sizeof(float) * (e1 - e0));
      });
      for (int d = 0; d < D; d++)
        direction(team, phases, *dirs[size_t(l * D + d)], l, d, d_out, out_layout, d_in, in_layout, input);
      if (l > 0 && !tape.masks.empty()) {
        const float* mask = tape.masks[l - 1].get();
        ranges(team, phases, n_in, 1 << 14, [&](int64_t e0, int64_t e1) {
          for (int64_t e = e0; e < e1; e++) d_in[e] *= mask[e];
        });
      }
    }
    phases.finish(team);
  }

  void direction(const Team& team, Phases& phases, const Direction& dir, int l, int d, const float* d_out,
                 const Layout& out_layout, float* d_in, const Layout& in_layout, const float* input) {
    const bool reverse = d == 1;
    const bool after = cfg.reset_after;
    const int64_t slot = int64_t(l * D + d) * B * H;
    const Tape::Impl::Dir& td = tape.dirs[size_t(l * D + d)];
    const int I = dir.input;
    // Setup: dL/dh after the last step (chunks of 16 sequences).
    const int64_t init_chunks = (B + 15) / 16;
    phases.run(team, int(init_chunks), [&](int c) {
      for (int64_t i = int64_t(c) * 16, end = std::min(B, i + 16); i < end; i++) {
        float* row = dh + i * Hn;
        std::memset(row, 0, sizeof(float) * Hn);
        if (d_hidden) std::memcpy(row, d_hidden + slot + int64_t(sched.perm[i]) * H, sizeof(float) * H);
      }
    });

    // The time loop, backwards.
    const float** rows_out = dout_rows.data() + member_rows(B) * team.id();
    int64_t filled = -1, filled_r0 = -1;
    const int pw = kt.panel_width();
    const int panels = Hn / pw;
    // Step s's rows [r0, r1): the pointers every kernel of the step starts from.
    auto rows_of = [&](int64_t s, int64_t r0, int64_t r1) {
      const int64_t base = sched.offset(s) + r0;
      GateGradStep g{};
      g.rows = int(r1 - r0);
      g.H = H;
      g.dh = dh + r0 * Hn;
      g.dh_ld = Hn;
      g.h = td.h.get() + base * Hp;
      g.r = td.r.get() + base * Hp;
      g.z = td.z.get() + base * Hp;
      g.n = td.n.get() + base * Hp;
      g.inner = td.inner.get() + base * Hp;
      g.tape_ld = Hp;
      g.dgx = dgx + base * 3 * Hp;
      g.dgx_ld = 3 * Hp;
      g.n_col = 2 * Hp;
      g.dgh = dgh ? dgh + base * 3 * Hp : nullptr;
      g.dgh_ld = 3 * Hp;
      g.drh = drh ? drh + r0 * Hn : nullptr;
      g.drh_ld = Hn;
      if (d_out && (filled != s || filled_r0 != r0)) {
        for (int64_t i = r0; i < r1; i++)
          rows_out[i - r0] = d_out + out_layout.row(sched.time(i, s, reverse), sched.perm[i]) + int64_t(d) * H;
        filled = s;
        filled_r0 = r0;
      }
      g.d_out = d_out ? rows_out : nullptr;
      return g;
    };
    auto units = [&](GateGradStep g, int q0, int q1) {
      g.u0 = q0 * pw;
      g.u1 = std::min(q1 * pw, Hp);  // up to the padding: every gradient column is written
      return g;
    };
    // dh[r0.., panels q0..q1) += the gate gradients of step s's rows [r0, r1) · W_hh.
    auto recurrent = [&](int64_t s, int64_t r0, int64_t r1, int q0, int q1) {
      const Schedule::Step at = sched.step(s);
      const int64_t rows = std::min(at.active, r1) - r0;
      if (rows <= 0) return;
      Rows a;
      a.base = (after ? dgh : dgx) + (at.offset + r0) * 3 * Hp;
      a.ld = 3 * Hp;
      MutRows c;
      c.base = dh + r0 * Hn;
      c.ld = Hn;
      gemm_packed(kt, rows, a, 1, after ? dir.whh_t.view : dir.whrz_t.view, q0, q1, c, true);
    };
    auto gates = [&](const GateGradStep& g, int q0, int q1) {
      const GateGradStep gq = units(g, q0, q1);
      if (gq.u0 >= gq.u1) return;
      if (after) kt.dgates_after(gq);
      else kt.dgates_before_1(gq);
    };
    // Reset before: d(r ⊙ h) needs every unit's n gradient of the step; then r's gradient.
    auto gates2 = [&](const GateGradStep& g, int64_t r0, int q0, int q1) {
      Rows an;
      an.base = g.dgx + 2 * Hp;
      an.ld = 3 * Hp;
      MutRows rc;
      rc.base = drh + r0 * Hn;
      rc.ld = Hn;
      gemm_packed(kt, g.rows, an, 1, dir.whn_t.view, q0, q1, rc, false);
      const GateGradStep gq = units(g, q0, q1);
      if (gq.u0 < gq.u1) kt.dgates_before_2(gq);
    };
    if (rows_split) {
      // Rows split, as in forward: each group of rows runs its whole backward recurrence alone,
      // and gives the back half of its rows to a member that runs out of work.
      auto run_rows = [&](const Handoff::Item& item) {
        const int64_t r0 = item.r0;
        int64_t r1 = item.r1;
        for (int64_t s = item.step; s >= 0; s--) {
          const int64_t active = sched.active(s);
          if (active <= r0) continue;
          if (s + 1 < S) recurrent(s + 1, r0, r1, 0, panels);
          const GateGradStep g = rows_of(s, r0, std::min(r1, active));
          gates(g, 0, panels);
          if (!after) gates2(g, r0, 0, panels);
          // The rows given away start at step s - 1 with step s's recurrent product.
          if (s > 0) r1 = handoff.give_half(r0, r1, sched.active(s - 1), s - 1, kMR);
        }
        if (S > 0) recurrent(0, r0, r1, 0, panels);
      };
      handoff.run(phases, team, groups, S - 1, run_rows, int64_t(L - 1 - l) * D + d);  // uses count up
    } else {
      // Units split: a chunk is one panel of dh's columns (3W units); it first adds the later
      // step's recurrent product into those columns of dh, then runs this step's gate gradients
      // for the same units, which read exactly those columns.
      // Chunks of as many panels as the widest tile for this few rows (see forward).
      const int pg = kt.tile_panels[std::max<int64_t>(1, std::min<int64_t>(B, kMR)) - 1];
      const int chunks = (panels + pg - 1) / pg;
      auto span = [&](int c, int* q0, int* q1) {
        *q0 = c * pg;
        *q1 = std::min(panels, c * pg + pg);
      };
      for (int64_t s = S - 1; s >= 0; s--) {
        const int64_t bt = sched.active(s);
        phases.run(team, chunks, [&](int c) {
          int q0, q1;
          span(c, &q0, &q1);
          if (s + 1 < S) recurrent(s + 1, 0, B, q0, q1);
          gates(rows_of(s, 0, bt), q0, q1);
        });
        if (!after) {
          phases.run(team, chunks, [&](int c) {
            int q0, q1;
            span(c, &q0, &q1);
            gates2(rows_of(s, 0, bt), 0, q0, q1);
          });
        }
      }
      if (S > 0) {
        phases.run(team, chunks, [&](int c) {
          int q0, q1;
          span(c, &q0, &q1);
          recurrent(0, 0, B, q0, q1);
        });
      }
    }

    // dh0, then the parameter gradients as products over every packed row.
    ranges(team, phases, B, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        std::memcpy(d_h0 + slot + int64_t(sched.perm[i]) * H, dh + i * Hn, sizeof(float) * H);
    });
    const DirectionGradients& out = grads[size_t(l * D + d)];
    const int64_t ld_wx = kt.padded_width(I);
    // The weight gradients: products over every packed row, in order, a window of rows at a time.
    // Each window's B operands (its rows of x, of h, and of r ⊙ h before the reset) are packed
    // once, K block by K block, for all the row blocks of C that follow; C accumulates window
    // after window, as one product over all the rows would.
    for (int64_t w = 0; w < windows; w++) {
      const int64_t k0 = w * window_rows, k1 = std::min(P, k0 + window_rows);
      phases.run(team, int((k1 - k0 + kKC - 1) / kKC), [&](int blk) {
        const int64_t kb = k0 + int64_t(blk) * kKC, kc = std::min<int64_t>(kKC, k1 - kb);
        const float** rows = x_rows.data() + int64_t(kKC) * team.id();
        // The packed rows of x from row kb on: step by step from kb's step.
        int64_t s = sched.step_of_row(kb), i = kb - sched.offset(s), active = sched.active(s);
        for (int64_t r = 0; r < kc; r++, i++) {
          if (i == active) {
            active = sched.active(++s);
            i = 0;
          }
          rows[r] = input + in_layout.row(sched.time(i, s, reverse), sched.perm[i]);
        }
        Rows xr;
        xr.ptrs = rows;
        Rows hr;
        hr.base = td.h.get() + kb * Hp;
        hr.ld = Hp;
        Rows rhr;
        rhr.base = td.inner.get() + kb * Hp;
        rhr.ld = Hp;
        const int64_t at = kb - k0;  // in the window's packed buffers, as pack_rows lays out a block
        pack_rows(kt, I, kc, xr, 0, 1, packed_x + at * kt.padded_width(I));
        pack_rows(kt, H, kc, hr, 0, 1, packed_h + at * kt.padded_width(H));
        if (!after) pack_rows(kt, H, kc, rhr, 0, 1, packed_rh + at * kt.padded_width(H));
      });
      const bool last = k1 == P;
      ranges(team, phases, 3 * Hp, 64, [&](int64_t r0, int64_t r1) {
        GemmWorkspace& ws_mine = ws[size_t(team.id())];
        gemm_general_packed_range(kt, r0, r1, I, k0, k1, dgx, 1, 3 * Hp, packed_x, wgrad_x, ld_wx, ws_mine);
        if (after) {
          gemm_general_packed_range(kt, r0, r1, H, k0, k1, dgh, 1, 3 * Hp, packed_h, wgrad_h, Hn, ws_mine);
        } else {
          // The n rows multiply r ⊙ h, the others h.
          const int64_t split = 2 * Hp;
          gemm_general_packed_range(kt, r0, std::min(r1, split), H, k0, k1, dgx, 1, 3 * Hp, packed_h, wgrad_h, Hn,
                                    ws_mine);
          gemm_general_packed_range(kt, std::max(r0, split), r1, H, k0, k1, dgx, 1, 3 * Hp, packed_rh, wgrad_h, Hn,
                                    ws_mine);
        }
        if (last) {
          unpermute(dir, r0, r1, wgrad_x, ld_wx, out.w_ih, I);
          unpermute(dir, r0, r1, wgrad_h, Hn, out.w_hh, H);
        }
        if (!cfg.bias) return;
        // Sums in double, rows in order: the same bits whoever computes them.
        const float* gh = after ? dgh : dgx;
        double* sx = bias_sums.data();
        double* sh = sx + 3 * Hp;
        if (k0 == 0) {
          std::fill(sx + r0, sx + r1, 0.0);
          std::fill(sh + r0, sh + r1, 0.0);
        }
        for (int64_t p = k0; p < k1; p++) {
          const float* gxr = dgx + p * 3 * Hp;
          const float* ghr = gh + p * 3 * Hp;
          for (int64_t c = r0; c < r1; c++) {
            sx[c] += gxr[c];
            sh[c] += ghr[c];
          }
        }
        if (!last) return;
        for (int64_t c = r0; c < r1; c++) {
          const int row = dir.gate_row[size_t(c)];
          if (row < 0) continue;
          out.b_ih[row] = float(sx[c]);
          out.b_hh[row] = float(sh[c]);
        }
      });
    }
    // dX: a block of kMC packed rows at a time into the member's buffer, then added into its
    // (t, b) rows. Each row is one packed row of this direction, so blocks add without conflict.
    ranges(team, phases, P, kMC, [&](int64_t r0, int64_t r1) {
      float* block = dxp + int64_t(team.id()) * kMC * ld_x;
      Rows ga;
      ga.base = dgx + r0 * 3 * Hp;
      ga.ld = 3 * Hp;
      MutRows xc;
      xc.base = block;
      xc.ld = ld_x;
      gemm_packed(kt, r1 - r0, ga, 1, dir.wih_t.view, 0, dir.wih_t.view.panels, xc, false);
      int64_t s = sched.step_of_row(r0), i = r0 - sched.offset(s), active = sched.active(s);
      for (int64_t p = r0; p < r1; p++, i++) {
        if (i == active) {
          active = sched.active(++s);
          i = 0;
        }
        float* dst = d_in + in_layout.row(sched.time(i, s, reverse), sched.perm[i]);
        const float* src = block + (p - r0) * ld_x;
        for (int k = 0; k < I; k++) dst[k] += src[k];
      }
    });
  }

  // Storage rows [r0, r1) of a permuted gradient into PyTorch's row order.
  void unpermute(const Direction& dir, int64_t r0, int64_t r1, const float* src, int64_t ld, float* dst,
                 int width) {
    for (int64_t c = r0; c < r1; c++) {
      const int row = dir.gate_row[size_t(c)];
      if (row >= 0) std::memcpy(dst + int64_t(row) * width, src + c * ld, sizeof(float) * width);
    }
  }
};

void Model::backward(const Tape& tape, const float* d_output, const float* d_hidden, float* d_input, float* d_h0,
                     const std::vector<DirectionGradients>& grads, ThreadPool& pool, int threads) const {
  if (int64_t(grads.size()) != int64_t(config_.num_layers) * config_.num_directions)
    throw Error("ERR_ARGUMENT", "grads: expected one entry per layer and direction");
  ScratchLease scratch(*this);
  Backward bw(kt_, config_, *tape.impl_, hp_, hn_, threads_for(config_, tape.impl_->sched.rows, threads, 2), d_output, d_hidden, d_input, d_h0, grads,
              *scratch);
  Phases phases(bw.threads, bw.phase_count());
  work_bytes_.store(bw.bytes + phases.bytes(), std::memory_order_relaxed);
  auto body = [&](const Team& team) { bw.run(team, phases, dirs_); };
  pool.run(bw.threads, body);
}

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
