// The forward pass: Model::forward and Model::forward_train. struct Forward holds one call's setup
// and working memory and runs the layers; ForwardDirection<ResetAfter> runs one direction of a
// layer in the model's form (chosen once per call): the input projection a window of steps at a
// time, then the time loop.
#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "gru.h"
#include "model_impl.h"
#include "schedule.h"
#include "scratch.h"
#include "tape.h"
#include "thread_pool.h"

namespace fastgru {

namespace {

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
// the output. (The Forward itself, with its Handoff, is a fixed size.)
struct Forward : CallPlan {
  const KernelTable& kt;
  const GruConfig& cfg;
  const std::vector<std::unique_ptr<PackedDirection>>& dirs;
  const Schedule& sched;
  Tape::Impl* tape;
  const float* x;
  const float* h0;
  const float* const* masks = nullptr;
  float* output = nullptr;
  float* hidden = nullptr;
  int64_t gh_ld = 0;  // the recurrent product's row: its [r z n] or [r z] columns in whole panels
  int64_t window_steps = 1, window_rows = 0, windows = 1;
  float *gx = nullptr, *gh = nullptr, *gh_n = nullptr, *z_step = nullptr, *rh = nullptr, *state = nullptr;
  float* inter[2] = {nullptr, nullptr};
  std::vector<const float*> x_rows;        // projection rows of the current window, packed order
  std::vector<float*> final_rows;          // where each row's final state goes
  std::vector<float*> out_rows;            // per thread, B entries (at member_rows(B) apart)
  std::vector<std::vector<int64_t>> cuts;  // per thread: the row groups of the current window
  Handoff handoff;                         // for the row groups; a use per layer, direction and window
  int64_t bytes = 0;                       // the working memory above

  Forward(const ModelParts& m, const SequenceBatch& in, const Schedule& s, Tape::Impl* tp, int requested_threads,
          Scratch& sc)
      : CallPlan(m.config, s, in.steps, in.batch, in.batch_first, m.hp, m.hn, requested_threads, 1),
        kt(m.kt), cfg(m.config), dirs(m.dirs), sched(s), tape(tp), x(in.x), h0(in.h0) {
    window_steps = std::max<int64_t>(1, window_bytes() / (int64_t(sizeof(float)) * 3 * Hp * std::max<int64_t>(B, 1)));
    window_rows = std::min(P, window_steps * B);
    windows = std::max<int64_t>(1, (S + window_steps - 1) / window_steps);
    auto take = [&](int slot, int64_t n) {
      bytes += n * int64_t(sizeof(float));
      return sc.get(slot, n);
    };
    // Every buffer here is written before it is read (the state's padding at the setup).
    gx = take(0, window_rows * 3 * Hp);
    gh_ld = kt.padded_width(int64_t(cfg.reset_after ? 3 : 2) * Hp);
    gh = take(1, B * gh_ld);
    if (!cfg.reset_after) {
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
    cuts.resize(size_t(threads));  // empty unless the rows are split
    if (rows_split) {
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

  // Runs the call on `pool` in the model's form, chosen here once.
  void start(ThreadPool& pool, Phases& phases) {
    if (cfg.reset_after) start_form<true>(pool, phases);
    else start_form<false>(pool, phases);
  }

 private:
  template <bool ResetAfter>
  void start_form(ThreadPool& pool, Phases& phases) {
    auto body = [&](const Team& team) { layers<ResetAfter>(team, phases); };
    pool.run(threads, body);
  }

  // The body every member runs: layers, directions and steps as phases of chunks.
  template <bool ResetAfter>
  void layers(const Team& team, Phases& phases);
};

// One direction of one layer in a forward call, in one form (ResetAfter), as one member of the team
// runs it: the pointers of its time loop and the steps it computes. Each member has its own.
template <bool ResetAfter>
class ForwardDirection {
 public:
  ForwardDirection(Forward& f, const Team& team, int l, int d, const float* input, const Layout& in_layout, float* out,
                   const Layout& out_layout)
      : f_(f), team_(team), kt_(f.kt), sched_(f.sched), dir_(*f.dirs[size_t(l * f.D + d)]), l_(l), d_(d),
        reverse_(d == 1), slot_(int64_t(l * f.D + d) * f.B * f.H),
        td_(f.tape ? &f.tape->dirs[size_t(l * f.D + d)] : nullptr), h_first_(td_ ? td_->h.get() : f.state),
        rows_out_(f.out_rows.data() + member_rows(f.B) * team.id()), input_(input), in_layout_(in_layout), out_(out),
        out_layout_(out_layout) {
    blocks_ = f.Hp / kGateBlock;
    pw_ = kt_.panel_width();  // every product's panels
    align_ = pw_ / std::gcd(pw_, kBlockCols);
    n_panels_ = f.Hn / pw_;
    // Units split (too few rows to share): every step is a phase over gate blocks (and, reset
    // before, a second phase over unit panels); the members share each step's weights.
    // A chunk holds at least as many panels as the widest tile for this few rows, so a single row
    // still runs on the tiles that keep 12 accumulators busy; beyond that, about eight chunks per
    // member; and a whole number of `align` blocks.
    const int mr = int(std::max<int64_t>(1, std::min<int64_t>(f.B, kMR)));
    n_group_ = kt_.tile_panels[mr - 1];
    const int wide = std::max({1, std::min(4, blocks_ / (8 * f.threads)), (n_group_ * pw_ + kBlockCols - 1) / kBlockCols});
    group_ = int(round_up(wide, align_));
    // Setup chunks of the projection's row pointers: whole steps, some 1024 rows.
    setup_steps_ = std::max<int64_t>(1, 1024 / std::max<int64_t>(f.B, 1));
  }

  // Every window of steps: its setup, its input projection, then its time loop.
  void run(Phases& phases) {
    const Forward::Grid whole = f_.projection_grid(dir_.wih.view, f_.window_rows);
    for (int64_t w = 0; w < f_.windows; w++) {
      const int64_t s0 = w * f_.window_steps, s1 = std::min(f_.S, s0 + f_.window_steps);
      window_base_ = sched_.offset(s0);
      const int64_t rows = sched_.offset(s1) - window_base_;
      setup(phases, w == 0, s0, s1);
      // The last window may be shorter: its grid then has fewer row blocks.
      project(phases, rows == f_.window_rows ? whole : f_.projection_grid(dir_.wih.view, rows), rows);
      std::vector<int64_t>& mine = f_.cuts[size_t(team_.id())];
      if (f_.rows_split) row_cuts(sched_, f_.threads, s0, s1, mine);
      run_time_loop(
          f_, team_, phases, f_.handoff, mine, s0, (int64_t(l_) * f_.D + d_) * f_.windows + w,
          [&](const Handoff::Item& item) { run_rows(item, s1); }, [&] { run_units(phases, s0, s1); });
    }
  }

 private:
  // The first product's columns: [r z n] (reset after) or [r z] per gate block, in panels of
  // pw that need not end where a block ends ([r z] is 32 columns a block). Gate blocks [b0, b1)
  // take panels [panel_of(b0), panel_of(b1)); b0 must be a multiple of `align` blocks, where a
  // panel starts too, so that no panel is in two chunks of the units split.
  static constexpr int kBlockCols = (ResetAfter ? 3 : 2) * kGateBlock;
  int panel_of(int b) const { return (b * kBlockCols + pw_ - 1) / pw_; }

  // Setup: the window's projection rows in packed order and, in the first window, the state
  // before step 0 and where each sequence's final state goes (chunks of 16 sequences).
  void setup(Phases& phases, bool first_window, int64_t s0, int64_t s1) {
    const int64_t row_chunks = (s1 - s0 + setup_steps_ - 1) / setup_steps_;
    const int64_t init_chunks = first_window ? (f_.B + 15) / 16 : 0;
    phases.run(team_, int(row_chunks + init_chunks), [&](int c) {
      if (c < row_chunks) {
        const int64_t s = s0 + c * setup_steps_;
        projection_rows(s, std::min(s1, s + setup_steps_));
      } else {
        const int64_t i = (c - row_chunks) * 16;
        initial_states(i, std::min(f_.B, i + 16));
      }
    });
  }

  // The projection rows of steps [s, end), in the window's packed order.
  void projection_rows(int64_t s, int64_t end) {
    for (; s < end; s++) {
      const Schedule::Step at = sched_.step(s);
      for (int64_t i = 0; i < at.active; i++)
        f_.x_rows[size_t(at.offset - window_base_ + i)] =
            input_ + in_layout_.row(sched_.time(i, s, reverse_), sched_.perm[i]);
    }
  }

  // Rows [i0, i1): the state before step 0 (h0 or zeros) and where the final state goes.
  void initial_states(int64_t i0, int64_t i1) {
    const int Hp = f_.Hp, H = f_.H;
    for (int64_t i = i0; i < i1; i++) {
      const int64_t b = sched_.perm[i];
      f_.final_rows[i] = f_.hidden + slot_ + b * H;
      const float* src = f_.h0 ? f_.h0 + slot_ + b * H : nullptr;
      float* dst = sched_.len[i] > 0 ? h_first_ + i * Hp : f_.final_rows[i];
      if (src) std::memcpy(dst, src, sizeof(float) * H);
      else std::memset(dst, 0, sizeof(float) * H);
      // The state's padding lanes stay zero from here on (padded units compute 0.5 · 0).
      if (sched_.len[i] > 0) std::memset(dst + H, 0, sizeof(float) * (Hp - H));
    }
  }

  // The window's input projection, x · W_ihᵀ for its `rows` packed rows, chunk by chunk of `grid`.
  void project(Phases& phases, const Forward::Grid& grid, int64_t rows) {
    phases.run(team_, grid.chunks(), [&](int c) {
      const int64_t r0 = (c % grid.row_blocks) * kMC, r1 = std::min(rows, r0 + kMC);
      const int g = int(c / grid.row_blocks);
      Rows a;
      a.ptrs = f_.x_rows.data() + r0;
      MutRows out_c;
      out_c.base = f_.gx + r0 * 3 * f_.Hp;
      out_c.ld = 3 * f_.Hp;
      gemm_packed(kt_, r1 - r0, a, 1, dir_.wih.view, int(int64_t(grid.panels) * g / grid.panel_groups),
                  int(int64_t(grid.panels) * (g + 1) / grid.panel_groups), out_c, false);
    });
  }

  // Step s for rows [r0, r1): the pointers every kernel of the step starts from.
  GateStep rows_of(int64_t s, int64_t r0, int64_t r1) {
    const int Hp = f_.Hp;
    const Schedule::Step at = sched_.step(s);
    const int64_t base = at.offset, next = at.offset + at.active;
    GateStep g{};
    g.rows = int(r1 - r0);
    g.rows_next = int(std::max<int64_t>(0, std::min(at.active_next, r1) - r0));
    g.H = f_.H;
    g.gx = f_.gx + (base - window_base_ + r0) * 3 * Hp;
    g.gx_ld = 3 * Hp;
    g.n_col = 2 * Hp;
    g.bias_x = dir_.bias_x.get();
    g.bias_hn = dir_.bias_hn.get();
    g.h = (td_ ? td_->h.get() + base * Hp : f_.state + (s & 1) * f_.B * Hp) + r0 * Hp;
    g.h_ld = Hp;
    g.h_next = (td_ ? td_->h.get() + next * Hp : f_.state + ((s + 1) & 1) * f_.B * Hp) + r0 * Hp;
    g.h_next_ld = Hp;
    g.out = rows_out_;
    g.final_h = f_.final_rows.data() + r0;
    g.tape_ld = Hp;
    if (td_) {
      g.r = td_->r.get() + (base + r0) * Hp;
      g.z = td_->z.get() + (base + r0) * Hp;
      g.n = td_->n.get() + (base + r0) * Hp;
      g.inner = td_->inner.get() + (base + r0) * Hp;
    }
    g.z_step = td_ ? g.z : f_.z_step + r0 * Hp;
    g.rh = td_ ? g.inner : f_.rh + r0 * Hp;
    g.step_ld = Hp;
    if (filled_ != s || filled_r0_ != r0) {
      for (int64_t i = r0; i < r1; i++)
        rows_out_[i - r0] = out_ + out_layout_.row(sched_.time(i, s, reverse_), sched_.perm[i]) + int64_t(d_) * f_.H;
      filled_ = s;
      filled_r0_ = r0;
    }
    return g;
  }

  // The recurrent product of gate blocks [b0, b1) and their gate math (reset before: r, z and r ⊙ h).
  void first(const GateStep& g, int64_t r0, int b0, int b1) {
    Rows ha;
    ha.base = g.h;
    ha.ld = f_.Hp;
    MutRows gc;
    gc.ld = f_.gh_ld;
    gc.base = f_.gh + r0 * gc.ld;
    gemm_packed(kt_, g.rows, ha, 1, dir_.whh.view, panel_of(b0), panel_of(b1), gc, false);
    GateStep gb = g;
    gb.gh = gc.base;
    gb.gh_ld = gc.ld;
    gb.u0 = b0 * kGateBlock;
    gb.u1 = b1 * kGateBlock;  // whole blocks: the padding lanes are computed too (all zeros)
    if constexpr (ResetAfter) kt_.gates_after(gb);
    else kt_.gates_before_rz(gb);
  }

  // Reset before: the candidate's product on r ⊙ h for unit panels [q0, q1), and the new state.
  void second(const GateStep& g, int64_t r0, int q0, int q1) {
    Rows ra;
    ra.base = g.rh;
    ra.ld = f_.Hp;
    MutRows nc;
    nc.base = f_.gh_n + r0 * f_.Hn;
    nc.ld = f_.Hn;
    gemm_packed(kt_, g.rows, ra, 1, dir_.whn.view, q0, q1, nc, false);
    GateStep gb = g;
    gb.gh = nc.base;
    gb.gh_ld = f_.Hn;
    gb.u0 = q0 * pw_;
    gb.u1 = std::min(q1 * pw_, f_.Hp);
    if (gb.u0 < gb.u1) kt_.gates_before_n(gb);
  }

  // Rows split: sequences never interact, so each group of rows runs the window's steps on its
  // own, with all the weights and no wait between steps. A member that runs out of work takes the
  // back half of a busy member's rows at its next step (never fewer than kMR rows each).
  void run_rows(const Handoff::Item& item, int64_t s1) {
    const int64_t r0 = item.r0;
    int64_t r1 = item.r1;
    for (int64_t s = item.step; s < s1; s++) {
      const Schedule::Step at = sched_.step(s);
      if (at.active <= r0) break;
      const GateStep g = rows_of(s, r0, std::min(r1, at.active));
      first(g, r0, 0, blocks_);
      if constexpr (!ResetAfter) second(g, r0, 0, n_panels_);
      if (s + 1 < s1) r1 = f_.handoff.give_half(r0, r1, at.active_next, s + 1, kMR);
    }
  }

  // Units split: each step of [s0, s1) a phase over chunks of gate blocks (reset before, then one
  // over chunks of unit panels), all of the step's rows in each.
  void run_units(Phases& phases, int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
      const int64_t bt = sched_.active(s);
      phases.run(team_, int((blocks_ + group_ - 1) / group_), [&](int c) {
        first(rows_of(s, 0, bt), 0, c * group_, std::min(blocks_, c * group_ + group_));
      });
      if constexpr (!ResetAfter) {
        phases.run(team_, int((n_panels_ + n_group_ - 1) / n_group_), [&](int c) {
          second(rows_of(s, 0, bt), 0, c * n_group_, std::min(n_panels_, c * n_group_ + n_group_));
        });
      }
    }
  }

  Forward& f_;
  const Team& team_;
  const KernelTable& kt_;
  const Schedule& sched_;
  const PackedDirection& dir_;
  const int l_, d_;
  const bool reverse_;
  const int64_t slot_;         // this layer and direction's [B, H] in h0 and hidden
  Tape::Impl::Dir* td_;        // the tape's rows of this direction, or null in inference
  float* h_first_;             // the state before step 0: the tape's first rows, or `state`
  float** rows_out_;           // this member's output rows of the step it runs
  const float* input_;
  const Layout in_layout_;
  float* out_;
  const Layout out_layout_;
  int blocks_ = 0, pw_ = 0, align_ = 0, n_panels_ = 0, n_group_ = 0, group_ = 0;
  int64_t setup_steps_ = 1;
  int64_t filled_ = -1, filled_r0_ = -1;  // the step and first row rows_out holds
  int64_t window_base_ = 0;               // the packed row of the window's first row in gx and x_rows
};

template <bool ResetAfter>
void Forward::layers(const Team& team, Phases& phases) {
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
    for (int d = 0; d < D; d++)
      ForwardDirection<ResetAfter>(*this, team, l, d, input, in_layout, out, out_layout).run(phases);
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

}  // namespace

void Model::forward(const SequenceBatch& batch, float* output, float* hidden, ThreadPool& pool, int threads) const {
  check_batch(config_, batch);
  const Schedule sched(batch.steps, batch.batch, batch.lengths);
  ScratchLease scratch;
  Forward run(parts(), batch, sched, nullptr, threads, *scratch);
  run.output = output;
  run.hidden = hidden;
  Phases phases(run.threads, run.phase_count());
  work_bytes_.store(run.bytes + phases.bytes() + sched.bytes(), std::memory_order_relaxed);
  run.start(pool, phases);
}

std::unique_ptr<Tape> Model::forward_train(const SequenceBatch& batch, const float* const* dropout_masks, float* output,
                                           float* hidden, ThreadPool& pool, int threads, Arena* arena) const {
  const CallSizes sizes = check_batch(config_, batch);
  auto tape = std::make_unique<Tape::Impl>(config_, hp_, batch, sizes, dropout_masks, arena);
  const std::vector<const float*> masks = tape->mask_rows();
  SequenceBatch in = batch;
  in.x = tape->x.get();
  ScratchLease scratch;
  Forward run(parts(), in, tape->sched, tape.get(), threads, *scratch);
  run.output = output;
  run.hidden = hidden;
  run.masks = masks.empty() ? nullptr : masks.data();
  Phases phases(run.threads, run.phase_count());
  work_bytes_.store(run.bytes + phases.bytes() + tape->sched.bytes(), std::memory_order_relaxed);
  run.start(pool, phases);
  return std::unique_ptr<Tape>(new Tape(std::move(tape)));
}

}  // namespace fastgru
