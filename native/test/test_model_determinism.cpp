// The same bits whatever the thread count and whatever the ISA: forward, forward_train and every
// output of backward (d_input, d_h0, all parameter gradients) for threads 1, 2 and 3, on the
// process-wide pool and on a pool of the test's own, for every ISA this CPU runs. The emulated
// widths 4 and 16 must be thread-count independent too; how their bits compare with width 8 is
// reported (forward asserted equal; backward sums in the gate storage order, which depends on W).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "emulated_kernels.h"
#include "error.h"
#include "gru_reference.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

struct Setup {
  GruConfig cfg;
  ref_gru::Call call;
  ref_gru::Params<float> params;
  std::vector<float> d_out, d_hid;
};

Setup make_setup(int I, int H, int L, int D, bool after, bool bias, int64_t T, int64_t B, bool batch_first,
                 bool h0, bool ragged, bool masks, uint64_t seed) {
  Setup s;
  s.cfg.input_size = I;
  s.cfg.hidden_size = H;
  s.cfg.num_layers = L;
  s.cfg.num_directions = D;
  s.cfg.reset_after = after;
  s.cfg.bias = bias;
  check::Rng rng(seed);
  s.params = ref_gru::random_params(s.cfg, rng, 0.5f);
  s.call = ref_gru::random_call(s.cfg, T, B, batch_first, h0, ragged, rng);
  if (masks)
    for (int l = 0; l + 1 < L; l++) {
      std::vector<float> m(size_t(T * B * D * H));
      for (float& v : m) v = rng.below(5) == 0 ? 0.0f : 1.25f;
      s.call.masks.push_back(m);
    }
  s.d_out = rng.floats(T * B * D * H, -1, 1);
  s.d_hid = rng.floats(int64_t(L) * D * B * H, -1, 1);
  return s;
}

// Output blocks of a flattened run, for naming where bits differ.
std::string locate(const ref_gru::EngineRun& e, int64_t index) {
  const char* names[] = {"output", "hidden", "train output", "train hidden", "d_input", "d_h0"};
  const std::vector<float>* parts[] = {&e.output, &e.hidden, &e.train_output, &e.train_hidden, &e.d_input, &e.d_h0};
  for (int i = 0; i < 6; i++) {
    if (index < int64_t(parts[i]->size())) return check::format("%s[%lld]", names[i], (long long)index);
    index -= int64_t(parts[i]->size());
  }
  for (size_t k = 0; k < e.grads.size(); k++) {
    const std::vector<float>* g[] = {&e.grads.w_ih[k], &e.grads.w_hh[k], &e.grads.b_ih[k], &e.grads.b_hh[k]};
    const char* gn[] = {"grad w_ih", "grad w_hh", "grad b_ih", "grad b_hh"};
    for (int i = 0; i < 4; i++) {
      if (index < int64_t(g[i]->size())) return check::format("%s[%zu][%lld]", gn[i], k, (long long)index);
      index -= int64_t(g[i]->size());
    }
  }
  return "?";
}

void expect_same(const ref_gru::EngineRun& got, const ref_gru::EngineRun& want, const std::string& what) {
  const std::vector<float> a = ref_gru::flatten(got), b = ref_gru::flatten(want);
  if (!EXPECT(a.size() == b.size(), "%s: %zu vs %zu floats", what.c_str(), a.size(), b.size())) return;
  const int64_t i = check::first_difference(a.data(), b.data(), int64_t(a.size()));
  EXPECT(i < 0, "%s: %lld of %zu floats differ; first %s = %.9g vs %.9g", what.c_str(),
         (long long)check::count_differences(a.data(), b.data(), int64_t(a.size())), a.size(),
         i >= 0 ? locate(got, i).c_str() : "", i >= 0 ? a[size_t(i)] : 0.0f, i >= 0 ? b[size_t(i)] : 0.0f);
}

}  // namespace

int main() {
  std::vector<Setup> setups;
  setups.push_back(make_setup(37, 45, 3, 2, true, true, 9, 7, true, true, true, true, 1));
  setups.push_back(make_setup(37, 45, 3, 2, false, false, 9, 7, false, false, false, false, 2));
  setups.push_back(make_setup(19, 70, 2, 1, false, true, 8, 6, false, true, true, true, 3));
  setups.push_back(make_setup(13, 100, 1, 2, true, true, 6, 13, false, false, true, false, 4));
  setups.push_back(make_setup(5, 23, 2, 2, false, true, 7, 5, true, true, true, false, 5));
  // W_ih over 512 KB packed: the projection splits W_ih's panels between the members.
  setups.push_back(make_setup(300, 180, 1, 1, false, true, 3, 40, false, true, true, false, 8));
  // Long and thin: more phases than the Phases table holds (it is reused epoch after epoch), and
  // with FASTGRU_WINDOW_BYTES small (ctest's *_windows runs) hundreds of projection windows, with
  // the units split (3 rows) and the rows split (20 rows, threads 1 and 2).
  setups.push_back(make_setup(2, 5, 2, 2, true, true, 1100, 3, false, true, true, true, 9));
  setups.push_back(make_setup(3, 9, 1, 2, false, true, 400, 20, true, true, true, false, 10));

  const std::vector<std::string> isas = available_isas();
  for (const char* name : {"ref", "avx2", "avx512", "neon"})
    if (std::find(isas.begin(), isas.end(), name) == isas.end())
      std::printf("skip %s: not available on this CPU or in this build (available: %s)\n", name, join(isas).c_str());

  ThreadPool own;
  for (const Setup& s : setups) {
    const std::string what = ref_gru::describe(s.cfg, s.call);
    const int64_t failures = check::state().failures;
    std::vector<ref_gru::EngineRun> width8;
    ref_gru::EngineRun baseline;
    bool have_baseline = false;
    for (const std::string& isa : isas) {
      const KernelTable& kt = kernels_for(isa);
      Model model(s.cfg, ref_gru::views(s.params), kt);
      for (int threads = 1; threads <= 3; threads++)
        for (int pool = 0; pool < 2; pool++) {
          ThreadPool& p = pool == 0 ? default_pool() : own;
          ref_gru::EngineRun e = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, p, threads);
          if (!have_baseline) {
            baseline = e;
            have_baseline = true;
            // Every backward output written (the buffers started at 1e30); model_forward checks
            // the forward outputs.
            const std::vector<float> all = ref_gru::flatten(e);
            const int64_t fwd = int64_t(e.output.size() + e.hidden.size() + e.train_output.size() + e.train_hidden.size());
            int64_t bad_bw = -1;
            for (size_t i = size_t(fwd); i < all.size(); i++)
              if (all[i] == ref_gru::kUnwritten) {
                bad_bw = int64_t(i);
                break;
              }
            EXPECT(bad_bw < 0, "%s: %s not written by backward", what.c_str(), bad_bw >= 0 ? locate(e, bad_bw).c_str() : "");
          } else {
            expect_same(e, baseline, check::format("%s %s threads=%d %s pool vs %s threads=1", what.c_str(), kt.name,
                                                   threads, pool ? "own" : "default", isas[0].c_str()));
          }
        }
    }
    std::printf("%s %s: forward, forward_train, backward (d_input, d_h0, all gradients) identical bits for %s x threads "
                "1, 2, 3 x default and own pool\n",
                check::state().failures == failures ? "ok  " : "FAIL", what.c_str(), join(isas).c_str());

    // The emulated widths (NEON's 4, AVX-512's 16): thread-count independent, and forward and
    // backward equal to width 8 bit for bit — the gate block is the same on every ISA.
    for (const KernelTable* kt : {&emulated::width4(), &emulated::width16()}) {
      const int64_t f0 = check::state().failures;
      Model model(s.cfg, ref_gru::views(s.params), *kt);
      const ref_gru::EngineRun one = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, own, 1);
      for (int threads = 2; threads <= 3; threads++)
        expect_same(ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, own, threads), one,
                    check::format("%s %s threads=%d vs threads=1", what.c_str(), kt->name, threads));
      EXPECT_SAME_BITS(one.hidden.data(), baseline.hidden.data(), int64_t(one.hidden.size()), "%s %s hidden vs width 8",
                       what.c_str(), kt->name);
      EXPECT_SAME_BITS(one.output.data(), baseline.output.data(), int64_t(one.output.size()), "%s %s output vs width 8",
                       what.c_str(), kt->name);
      const std::vector<float> a = ref_gru::flatten(one), b = ref_gru::flatten(baseline);
      const int64_t fwd = int64_t(one.output.size() + one.hidden.size() + one.train_output.size() + one.train_hidden.size());
      const int64_t diff = check::count_differences(a.data() + fwd, b.data() + fwd, int64_t(a.size()) - fwd);
      const int64_t first = check::first_difference(a.data() + fwd, b.data() + fwd, int64_t(a.size()) - fwd);
      EXPECT(diff == 0, "%s %s: %lld backward floats differ from width 8, first %s", what.c_str(), kt->name,
             (long long)diff, first >= 0 ? locate(one, first + fwd).c_str() : "");
      std::printf("%s %s %s: threads 1, 2, 3 identical; forward identical to width 8; backward: %lld of %lld floats "
                  "differ from width 8%s%s\n",
                  check::state().failures == f0 ? "ok  " : "FAIL", what.c_str(), kt->name, (long long)diff,
                  (long long)(int64_t(a.size()) - fwd), first >= 0 ? ", first " : "",
                  first >= 0 ? locate(one, first + fwd).c_str() : "");
    }
  }
  // gru.h: forward is safe to call concurrently. Two OS threads share one model and the default
  // pool (one of them finds it busy and runs alone): every result has the single-caller bits.
  {
    const Setup& s = setups[0];
    Model model(s.cfg, ref_gru::views(s.params), kernels_for(isas.back()));
    const ref_gru::EngineRun want = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, default_pool(), 2);
    std::atomic<int> wrong{0};
    auto caller = [&] {
      for (int i = 0; i < 20; i++) {
        const ref_gru::EngineRun got = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, default_pool(), 2);
        const std::vector<float> a = ref_gru::flatten(got), b = ref_gru::flatten(want);
        if (a.size() != b.size() || check::first_difference(a.data(), b.data(), int64_t(a.size())) >= 0) wrong++;
      }
    };
    std::thread t1(caller), t2(caller);
    t1.join();
    t2.join();
    EXPECT(wrong == 0, "concurrent calls on one model: %d of 40 runs differ from a single caller's bits", wrong.load());
    std::printf("%s two OS threads x 20 forward + forward_train + backward on one %s model and the default pool: "
                "the single caller's bits every time\n",
                wrong == 0 ? "ok  " : "FAIL", isas.back().c_str());
  }
  // Row groups handing rows to an idle member (Handoff): with 16 rows or more per thread the time
  // loop splits by rows, and a member that runs out of work takes the back half of a busy member's
  // rows. Spinning threads beside the team slow members at random, so handoffs happen at varying
  // steps; every run (forward, forward_train and backward) must have the bits of threads = 1. At
  // least 6 runs per form, and more until 4 handoffs have been seen (at most 400).
  for (bool after : {true, false}) {
    const Setup s = make_setup(21, 40, 2, 2, after, true, 30, 37, false, true, true, true, 6 + after);
    const std::string what = ref_gru::describe(s.cfg, s.call);
    Model model(s.cfg, ref_gru::views(s.params), kernels_for(isas.back()));
    const ref_gru::EngineRun want = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, own, 1);
    std::atomic<bool> stop{false};
    std::vector<std::thread> hogs;
    for (int i = 0; i < 2; i++)
      hogs.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
          while (std::chrono::steady_clock::now() < until) {
          }
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
    const int64_t given0 = Handoff::given_total();
    int runs = 0, wrong = 0;
    for (; runs < 400 && (runs < 6 || Handoff::given_total() - given0 < 4); runs++) {
      const ref_gru::EngineRun got = ref_gru::run_engine(model, s.call, &s.d_out, &s.d_hid, own, 2 + runs % 2);
      const std::vector<float> a = ref_gru::flatten(got), b = ref_gru::flatten(want);
      if (a.size() != b.size() || check::first_difference(a.data(), b.data(), int64_t(a.size())) >= 0) wrong++;
    }
    stop = true;
    for (std::thread& t : hogs) t.join();
    const int64_t given = Handoff::given_total() - given0;
    EXPECT(wrong == 0, "%s with handoffs: %d of %d runs differ from threads = 1", what.c_str(), wrong, runs);
    EXPECT(given > 0, "%s: no rows were handed to an idle member in %d runs beside spinning threads", what.c_str(), runs);
    std::printf("%s %s, threads 2 and 3 beside two spinning threads: %d runs, %lld handoffs, the bits of threads = 1 "
                "every time\n",
                wrong == 0 && given > 0 ? "ok  " : "FAIL", what.c_str(), runs, (long long)given);
  }
  return check::finish("model_determinism");
}
