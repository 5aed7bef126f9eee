// The backward pass: Model::backward. struct Backward holds one call's setup and working memory
// and runs the layers last to first; BackwardDirection<ResetAfter> runs one direction of a layer in
// the model's form (chosen once per call): the time loop backwards, then dh0, the weight and bias
// gradients a window of rows at a time, and the input's gradient.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "gru.h"
#include "model_impl.h"
#include "schedule.h"
#include "scratch.h"
#include "tape.h"
#include "thread_pool.h"

namespace fastgru {

namespace {

// One backward call's working memory. In bytes, with Hp, pw and Hn as for Forward (forward.cpp),
// n the threads, P and S the tape's rows and steps, and ld_x = pw(max(I, D·H)), the widest layer
// input:
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
struct Backward : CallPlan {
  const KernelTable& kt;
  const GruConfig& cfg;
  const std::vector<std::unique_ptr<PackedDirection>>& dirs;
  const Tape::Impl& tape;
  const Schedule& sched;
  const float* d_output;
  const float* d_hidden;
  float* d_input;
  float* d_h0;
  const std::vector<DirectionGradients>& grads;
  float *dgx = nullptr, *dgh = nullptr, *dh = nullptr, *drh = nullptr, *dxp = nullptr, *wgrad_x = nullptr,
        *wgrad_h = nullptr, *packed_x = nullptr, *packed_h = nullptr, *packed_rh = nullptr;
  std::vector<double> bias_sums;  // [2, 3Hp]: each thread sums its own columns
  float* d_layer[2] = {nullptr, nullptr};
  int64_t ld_x = 0;
  int64_t window_rows = 0, windows = 1;  // the weight gradients' rows packed at a time (kKC multiple)
  std::vector<const float*> x_rows;     // per thread, kKC entries: a block's input rows
  std::vector<const float*> dout_rows;  // per thread, B entries (at member_rows(B) apart)
  std::vector<int64_t> groups;          // row groups when the rows are split, else empty
  Handoff handoff;                      // for the row groups; a use per layer and direction
  std::vector<GemmWorkspace>& ws;
  int64_t bytes = 0;                    // the working memory above

  Backward(const ModelParts& m, const Tape::Impl& t, int requested_threads, const float* dout, const float* dhid,
           float* din, float* dh0, const std::vector<DirectionGradients>& g, Scratch& sc)
      : CallPlan(m.config, t.sched, t.steps, t.batch, t.batch_first, m.hp, m.hn, requested_threads, 2),
        kt(m.kt), cfg(m.config), dirs(m.dirs), tape(t), sched(t.sched), d_output(dout), d_hidden(dhid),
        d_input(din), d_h0(dh0), grads(g), ws(sc.gemm) {
    const int widest_in = std::max(cfg.input_size, D * H);
    ld_x = kt.padded_width(widest_in);
    const int64_t packed_row = ld_x + kt.padded_width(H) * (cfg.reset_after ? 1 : 2);  // floats a row packs to
    window_rows = std::max<int64_t>(kKC, window_bytes() / (int64_t(sizeof(float)) * packed_row) / kKC * kKC);
    window_rows = std::min(P, window_rows);
    windows = P > 0 ? (P + window_rows - 1) / window_rows : 1;
    auto take = [&](int slot, int64_t n) {
      bytes += n * int64_t(sizeof(float));
      return sc.get(slot, n);
    };
    // All written before they are read (dh row by row at each direction's setup).
    dgx = take(0, P * 3 * Hp);
    if (cfg.reset_after) dgh = take(1, P * 3 * Hp);
    else drh = take(1, B * Hn);
    dh = take(2, B * Hn);
    dxp = take(3, int64_t(threads) * kMC * ld_x);
    wgrad_x = take(4, 3 * Hp * ld_x);
    wgrad_h = take(5, 3 * Hp * Hn);
    packed_x = take(8, packed_floats(kt, window_rows, widest_in));
    packed_h = take(9, packed_floats(kt, window_rows, H));
    if (!cfg.reset_after) packed_rh = take(10, packed_floats(kt, window_rows, H));
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

  // The body every member runs: layers last to first, each direction's phases, the dropout.
  template <bool ResetAfter>
  void layers(const Team& team, Phases& phases);
};

// Storage rows [r0, r1) of a permuted gradient into PyTorch's row order.
void unpermute(const PackedDirection& dir, int64_t r0, int64_t r1, const float* src, int64_t ld, float* dst, int width) {
  for (int64_t c = r0; c < r1; c++) {
    const int row = dir.gate_row[size_t(c)];
    if (row >= 0) std::memcpy(dst + int64_t(row) * width, src + c * ld, sizeof(float) * width);
  }
}

// One direction of one layer in a backward call, in one form (ResetAfter), as one member of the
// team runs it. Each member has its own.
template <bool ResetAfter>
class BackwardDirection {
 public:
  BackwardDirection(Backward& b, const Team& team, int l, int d, const float* d_out, const Layout& out_layout,
                    float* d_in, const Layout& in_layout, const float* input)
      : b_(b), team_(team), kt_(b.kt), sched_(b.sched), dir_(*b.dirs[size_t(l * b.D + d)]), l_(l), d_(d),
        reverse_(d == 1), slot_(int64_t(l * b.D + d) * b.B * b.H), td_(b.tape.dirs[size_t(l * b.D + d)]),
        I_(dir_.input), rows_out_(b.dout_rows.data() + member_rows(b.B) * team.id()), d_out_(d_out),
        out_layout_(out_layout), d_in_(d_in), in_layout_(in_layout), input_(input), pw_(kt_.panel_width()),
        panels_(b.Hn / pw_) {}

  void run(Phases& phases) {
    init_dh(phases);
    run_time_loop(
        b_, team_, phases, b_.handoff, b_.groups, b_.S - 1, int64_t(b_.L - 1 - l_) * b_.D + d_,  // uses count up
        [&](const Handoff::Item& item) { run_rows(item); }, [&] { run_units(phases); });
    // dh0, then the parameter gradients as products over every packed row.
    b_.ranges(team_, phases, b_.B, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        std::memcpy(b_.d_h0 + slot_ + int64_t(sched_.perm[i]) * b_.H, b_.dh + i * b_.Hn, sizeof(float) * b_.H);
    });
    weight_gradients(phases);
    input_gradient(phases);
  }

 private:
  // Setup: dL/dh after the last step (chunks of 16 sequences).
  void init_dh(Phases& phases) {
    const int64_t B = b_.B, H = b_.H, Hn = b_.Hn;
    phases.run(team_, int((B + 15) / 16), [&](int c) {
      for (int64_t i = int64_t(c) * 16, end = std::min(B, i + 16); i < end; i++) {
        float* row = b_.dh + i * Hn;
        std::memset(row, 0, sizeof(float) * Hn);
        if (b_.d_hidden) std::memcpy(row, b_.d_hidden + slot_ + int64_t(sched_.perm[i]) * H, sizeof(float) * H);
      }
    });
  }

  // Step s's rows [r0, r1): the pointers every kernel of the step starts from.
  GateGradStep rows_of(int64_t s, int64_t r0, int64_t r1) {
    const int Hp = b_.Hp, Hn = b_.Hn;
    const int64_t base = sched_.offset(s) + r0;
    GateGradStep g{};
    g.rows = int(r1 - r0);
    g.H = b_.H;
    g.dh = b_.dh + r0 * Hn;
    g.dh_ld = Hn;
    g.h = td_.h.get() + base * Hp;
    g.r = td_.r.get() + base * Hp;
    g.z = td_.z.get() + base * Hp;
    g.n = td_.n.get() + base * Hp;
    g.inner = td_.inner.get() + base * Hp;
    g.tape_ld = Hp;
    g.dgx = b_.dgx + base * 3 * Hp;
    g.dgx_ld = 3 * Hp;
    g.n_col = 2 * Hp;
    g.dgh = b_.dgh ? b_.dgh + base * 3 * Hp : nullptr;
    g.dgh_ld = 3 * Hp;
    g.drh = b_.drh ? b_.drh + r0 * Hn : nullptr;
    g.drh_ld = Hn;
    if (d_out_ && (filled_ != s || filled_r0_ != r0)) {
      for (int64_t i = r0; i < r1; i++)
        rows_out_[i - r0] = d_out_ + out_layout_.row(sched_.time(i, s, reverse_), sched_.perm[i]) + int64_t(d_) * b_.H;
      filled_ = s;
      filled_r0_ = r0;
    }
    g.d_out = d_out_ ? rows_out_ : nullptr;
    return g;
  }

  GateGradStep units(GateGradStep g, int q0, int q1) const {
    g.u0 = q0 * pw_;
    g.u1 = std::min(q1 * pw_, b_.Hp);  // up to the padding: every gradient column is written
    return g;
  }

  // dh[r0.., panels q0..q1) += the gate gradients of step s's rows [r0, r1) · W_hh.
  void recurrent(int64_t s, int64_t r0, int64_t r1, int q0, int q1) {
    const Schedule::Step at = sched_.step(s);
    const int64_t rows = std::min(at.active, r1) - r0;
    if (rows <= 0) return;
    Rows a;
    a.base = (ResetAfter ? b_.dgh : b_.dgx) + (at.offset + r0) * 3 * b_.Hp;
    a.ld = 3 * b_.Hp;
    MutRows c;
    c.base = b_.dh + r0 * b_.Hn;
    c.ld = b_.Hn;
    gemm_packed(kt_, rows, a, 1, ResetAfter ? dir_.whh_t.view : dir_.whrz_t.view, q0, q1, c, true);
  }

  void gates(const GateGradStep& g, int q0, int q1) {
    const GateGradStep gq = units(g, q0, q1);
    if (gq.u0 >= gq.u1) return;
    if constexpr (ResetAfter) kt_.dgates_after(gq);
    else kt_.dgates_before_1(gq);
  }

  // Reset before: d(r ⊙ h) needs every unit's n gradient of the step; then r's gradient.
  void gates2(const GateGradStep& g, int64_t r0, int q0, int q1) {
    Rows an;
    an.base = g.dgx + 2 * b_.Hp;
    an.ld = 3 * b_.Hp;
    MutRows rc;
    rc.base = b_.drh + r0 * b_.Hn;
    rc.ld = b_.Hn;
    gemm_packed(kt_, g.rows, an, 1, dir_.whn_t.view, q0, q1, rc, false);
    const GateGradStep gq = units(g, q0, q1);
    if (gq.u0 < gq.u1) kt_.dgates_before_2(gq);
  }

  // Rows split, as in forward: each group of rows runs its whole backward recurrence alone, and
  // gives the back half of its rows to a member that runs out of work.
  void run_rows(const Handoff::Item& item) {
    const int64_t r0 = item.r0;
    int64_t r1 = item.r1;
    for (int64_t s = item.step; s >= 0; s--) {
      const int64_t active = sched_.active(s);
      if (active <= r0) continue;
      if (s + 1 < b_.S) recurrent(s + 1, r0, r1, 0, panels_);
      const GateGradStep g = rows_of(s, r0, std::min(r1, active));
      gates(g, 0, panels_);
      if constexpr (!ResetAfter) gates2(g, r0, 0, panels_);
      // The rows given away start at step s - 1 with step s's recurrent product.
      if (s > 0) r1 = b_.handoff.give_half(r0, r1, sched_.active(s - 1), s - 1, kMR);
    }
    if (b_.S > 0) recurrent(0, r0, r1, 0, panels_);
  }

  // Units split: a chunk is one panel of dh's columns (3W units); it first adds the later
  // step's recurrent product into those columns of dh, then runs this step's gate gradients
  // for the same units, which read exactly those columns.
  // Chunks of as many panels as the widest tile for this few rows (see forward).
  void run_units(Phases& phases) {
    const int64_t B = b_.B, S = b_.S;
    const int pg = kt_.tile_panels[std::max<int64_t>(1, std::min<int64_t>(B, kMR)) - 1];
    const int chunks = (panels_ + pg - 1) / pg;
    auto q0 = [&](int c) { return c * pg; };
    auto q1 = [&](int c) { return std::min(panels_, c * pg + pg); };
    for (int64_t s = S - 1; s >= 0; s--) {
      const int64_t bt = sched_.active(s);
      phases.run(team_, chunks, [&](int c) {
        if (s + 1 < S) recurrent(s + 1, 0, B, q0(c), q1(c));
        gates(rows_of(s, 0, bt), q0(c), q1(c));
      });
      if constexpr (!ResetAfter) {
        phases.run(team_, chunks, [&](int c) { gates2(rows_of(s, 0, bt), 0, q0(c), q1(c)); });
      }
    }
    if (S > 0) phases.run(team_, chunks, [&](int c) { recurrent(0, 0, B, q0(c), q1(c)); });
  }

  // The weight gradients: products over every packed row, in order, a window of rows at a time.
  // Each window's B operands (its rows of x, of h, and of r ⊙ h before the reset) are packed
  // once, K block by K block, for all the row blocks of C that follow; C accumulates window
  // after window, as one product over all the rows would.
  void weight_gradients(Phases& phases) {
    for (int64_t w = 0; w < b_.windows; w++) {
      const int64_t k0 = w * b_.window_rows, k1 = std::min(b_.P, k0 + b_.window_rows);
      phases.run(team_, int((k1 - k0 + kKC - 1) / kKC), [&](int blk) { pack_block(k0, k1, blk); });
      const bool last = k1 == b_.P;
      b_.ranges(team_, phases, 3 * b_.Hp, 64, [&](int64_t r0, int64_t r1) {
        weight_rows(r0, r1, k0, k1, last);
        if (b_.cfg.bias) bias_rows(r0, r1, k0, k1, last);
      });
    }
  }

  // K block `blk` of the window [k0, k1): its rows of x, h (and r ⊙ h) packed as pack_rows lays
  // out a block, in the window's packed buffers.
  void pack_block(int64_t k0, int64_t k1, int blk) {
    const int Hp = b_.Hp;
    const int64_t kb = k0 + int64_t(blk) * kKC, kc = std::min<int64_t>(kKC, k1 - kb);
    const float** rows = b_.x_rows.data() + int64_t(kKC) * team_.id();
    // The packed rows of x from row kb on: step by step from kb's step.
    int64_t s = sched_.step_of_row(kb), i = kb - sched_.offset(s), active = sched_.active(s);
    for (int64_t r = 0; r < kc; r++, i++) {
      if (i == active) {
        active = sched_.active(++s);
        i = 0;
      }
      rows[r] = input_ + in_layout_.row(sched_.time(i, s, reverse_), sched_.perm[i]);
    }
    Rows xr;
    xr.ptrs = rows;
    Rows hr;
    hr.base = td_.h.get() + kb * Hp;
    hr.ld = Hp;
    Rows rhr;
    rhr.base = td_.inner.get() + kb * Hp;
    rhr.ld = Hp;
    const int64_t at = kb - k0;  // in the window's packed buffers, as pack_rows lays out a block
    pack_rows(kt_, I_, kc, xr, 0, 1, b_.packed_x + at * kt_.padded_width(I_));
    pack_rows(kt_, b_.H, kc, hr, 0, 1, b_.packed_h + at * kt_.padded_width(b_.H));
    if constexpr (!ResetAfter) pack_rows(kt_, b_.H, kc, rhr, 0, 1, b_.packed_rh + at * kt_.padded_width(b_.H));
  }

  // Gate rows [r0, r1) of W_ih's and W_hh's gradients, over the window's rows [k0, k1); in
  // PyTorch's order after the last window.
  void weight_rows(int64_t r0, int64_t r1, int64_t k0, int64_t k1, bool last) {
    const int Hp = b_.Hp, Hn = b_.Hn, H = b_.H;
    const int64_t ld_wx = kt_.padded_width(I_);
    GemmWorkspace& ws_mine = b_.ws[size_t(team_.id())];
    gemm_general_packed_range(kt_, r0, r1, I_, k0, k1, b_.dgx, 1, 3 * Hp, b_.packed_x, b_.wgrad_x, ld_wx, ws_mine);
    if constexpr (ResetAfter) {
      gemm_general_packed_range(kt_, r0, r1, H, k0, k1, b_.dgh, 1, 3 * Hp, b_.packed_h, b_.wgrad_h, Hn, ws_mine);
    } else {
      // The n rows multiply r ⊙ h, the others h.
      const int64_t split = 2 * Hp;
      gemm_general_packed_range(kt_, r0, std::min(r1, split), H, k0, k1, b_.dgx, 1, 3 * Hp, b_.packed_h, b_.wgrad_h,
                                Hn, ws_mine);
      gemm_general_packed_range(kt_, std::max(r0, split), r1, H, k0, k1, b_.dgx, 1, 3 * Hp, b_.packed_rh, b_.wgrad_h,
                                Hn, ws_mine);
    }
    if (last) {
      const DirectionGradients& out = b_.grads[size_t(l_ * b_.D + d_)];
      unpermute(dir_, r0, r1, b_.wgrad_x, ld_wx, out.w_ih, I_);
      unpermute(dir_, r0, r1, b_.wgrad_h, Hn, out.w_hh, H);
    }
  }

  // Gate rows [r0, r1) of the bias gradients, over the window's rows [k0, k1). Sums in double,
  // rows in order: the same bits whoever computes them.
  void bias_rows(int64_t r0, int64_t r1, int64_t k0, int64_t k1, bool last) {
    const int Hp = b_.Hp;
    const float* gh = ResetAfter ? b_.dgh : b_.dgx;
    double* sx = b_.bias_sums.data();
    double* sh = sx + 3 * Hp;
    if (k0 == 0) {
      std::fill(sx + r0, sx + r1, 0.0);
      std::fill(sh + r0, sh + r1, 0.0);
    }
    for (int64_t p = k0; p < k1; p++) {
      const float* gxr = b_.dgx + p * 3 * Hp;
      const float* ghr = gh + p * 3 * Hp;
      for (int64_t c = r0; c < r1; c++) {
        sx[c] += gxr[c];
        sh[c] += ghr[c];
      }
    }
    if (!last) return;
    const DirectionGradients& out = b_.grads[size_t(l_ * b_.D + d_)];
    for (int64_t c = r0; c < r1; c++) {
      const int row = dir_.gate_row[size_t(c)];
      if (row < 0) continue;
      out.b_ih[row] = float(sx[c]);
      out.b_hh[row] = float(sh[c]);
    }
  }

  // dX: a block of kMC packed rows at a time into the member's buffer, then added into its
  // (t, b) rows. Each row is one packed row of this direction, so blocks add without conflict.
  void input_gradient(Phases& phases) {
    const int64_t ld_x = b_.ld_x;
    b_.ranges(team_, phases, b_.P, kMC, [&](int64_t r0, int64_t r1) {
      float* block = b_.dxp + int64_t(team_.id()) * kMC * ld_x;
      Rows ga;
      ga.base = b_.dgx + r0 * 3 * b_.Hp;
      ga.ld = 3 * b_.Hp;
      MutRows xc;
      xc.base = block;
      xc.ld = ld_x;
      gemm_packed(kt_, r1 - r0, ga, 1, dir_.wih_t.view, 0, dir_.wih_t.view.panels, xc, false);
      int64_t s = sched_.step_of_row(r0), i = r0 - sched_.offset(s), active = sched_.active(s);
      for (int64_t p = r0; p < r1; p++, i++) {
        if (i == active) {
          active = sched_.active(++s);
          i = 0;
        }
        float* dst = d_in_ + in_layout_.row(sched_.time(i, s, reverse_), sched_.perm[i]);
        const float* src = block + (p - r0) * ld_x;
        for (int k = 0; k < I_; k++) dst[k] += src[k];
      }
    });
  }

  Backward& b_;
  const Team& team_;
  const KernelTable& kt_;
  const Schedule& sched_;
  const PackedDirection& dir_;
  const int l_, d_;
  const bool reverse_;
  const int64_t slot_;               // this layer and direction's [B, H] in d_hidden and d_h0
  const Tape::Impl::Dir& td_;        // the tape's rows of this direction
  const int I_;                      // the layer's input width
  const float** rows_out_;           // this member's d_output rows of the step it runs
  const float* d_out_;
  const Layout out_layout_;
  float* d_in_;
  const Layout in_layout_;
  const float* input_;
  const int pw_, panels_;
  int64_t filled_ = -1, filled_r0_ = -1;  // the step and first row rows_out holds
};

template <bool ResetAfter>
void Backward::layers(const Team& team, Phases& phases) {
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
      BackwardDirection<ResetAfter>(*this, team, l, d, d_out, out_layout, d_in, in_layout, input).run(phases);
    if (l > 0 && !tape.masks.empty()) {
      const float* mask = tape.masks[l - 1].get();
      ranges(team, phases, n_in, 1 << 14, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; e++) d_in[e] *= mask[e];
      });
    }
  }
  phases.finish(team);
}

}  // namespace

void Model::backward(const Tape& tape, const float* d_output, const float* d_hidden, float* d_input, float* d_h0,
                     const std::vector<DirectionGradients>& grads, ThreadPool& pool, int threads) const {
  if (int64_t(grads.size()) != int64_t(config_.num_layers) * config_.num_directions)
    throw Error("ERR_ARGUMENT", "grads: expected one entry per layer and direction");
  ScratchLease scratch;
  Backward bw(parts(), *tape.impl_, threads, d_output, d_hidden, d_input, d_h0, grads, *scratch);
  Phases phases(bw.threads, bw.phase_count());
  work_bytes_.store(bw.bytes + phases.bytes(), std::memory_order_relaxed);
  bw.start(pool, phases);
}

}  // namespace fastgru
