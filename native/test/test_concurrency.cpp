// Concurrent use of one Model and of the shared-model registry, the way the addon uses them:
// forwardAsync runs Model::forward on libuv's worker threads while the main thread calls forward
// and trains, and GRU.fromShared looks models up from several worker_threads at once. Four OS
// threads share one model and the default pool (a caller that finds the pool busy runs its call
// alone), with thread counts, lengths and batch sizes varying from call to call; every result must
// have the bits of the same call made serially. Checked:
//   - forward from four callers at once;
//   - forward mixed with forward_train + backward, each training call on its own tape;
//   - backward from four callers at once on one tape (a const method on a const tape);
//   - shared_model from four callers at once: the same Model for the same configuration, kernels
//     and weight values (each caller passes its own copy of the arrays), a different one otherwise,
//     also while other callers drop their last reference and the entry expires.
// .ci/native-tests.sh tsan runs it under ThreadSanitizer. The callers never touch check.h's
// counters: each records what it saw, and the main thread checks after the join.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "gru_reference.h"
#include "testing.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

constexpr int kCallers = 4;

// Runs body(caller) on kCallers threads that start together, so their calls overlap from the first.
void run_callers(const std::function<void(int)>& body) {
  std::atomic<int> arrived{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; c++)
    threads.emplace_back([&, c] {
      arrived.fetch_add(1);
      while (arrived.load() < kCallers) std::this_thread::yield();
      body(c);
    });
  for (std::thread& t : threads) t.join();
}

// How many calls began while another caller's call was running: evidence that the calls overlapped.
struct Overlap {
  std::atomic<int> in_flight{0}, overlapped{0}, calls{0};
  void begin() {
    calls.fetch_add(1);
    if (in_flight.fetch_add(1) > 0) overlapped.fetch_add(1);
  }
  void end() { in_flight.fetch_sub(1); }
};

// What the callers saw go wrong: a count and the first description.
struct Mismatches {
  std::mutex mutex;
  int count = 0;
  std::string first;
  void add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    if (count++ == 0) first = what;
  }
};

// "" when equal, else where and by how much they differ.
std::string compare(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return check::format("%zu floats, expected %zu", got.size(), want.size());
  const int64_t i = check::first_difference(got.data(), want.data(), int64_t(got.size()));
  if (i < 0) return "";
  return check::format("%lld of %zu floats differ, first [%lld]: %.9g vs %.9g",
                       (long long)check::count_differences(got.data(), want.data(), int64_t(got.size())), got.size(),
                       (long long)i, got[size_t(i)], want[size_t(i)]);
}

struct Case {
  ref_gru::Call call;
  int threads = 1;
  std::vector<float> d_out, d_hid;
  std::string what;
};

std::vector<float> forward_bits(const Model& model, const Case& c) {
  return ref_gru::flatten(ref_gru::run_engine(model, c.call, nullptr, nullptr, default_pool(), c.threads, false));
}

// forward, then forward_train on a tape of its own, then backward: every output concatenated.
std::vector<float> training_bits(const Model& model, const Case& c) {
  return ref_gru::flatten(ref_gru::run_engine(model, c.call, &c.d_out, &c.d_hid, default_pool(), c.threads, true));
}

// backward on a given tape: d_input, d_h0 and every parameter gradient, concatenated.
std::vector<float> backward_bits(const Model& model, const Tape& tape, const Case& c, int threads) {
  const GruConfig& cfg = model.config();
  const CallSizes sizes = check_batch(cfg, c.call.batch());
  std::vector<float> d_input(size_t(sizes.x), ref_gru::kUnwritten), d_h0(size_t(sizes.h), ref_gru::kUnwritten);
  std::vector<std::vector<float>> storage;
  std::vector<DirectionGradients> grads(size_t(cfg.num_layers * cfg.num_directions));
  const int64_t H = cfg.hidden_size;
  for (size_t k = 0; k < grads.size(); k++) {
    const int64_t I = ref_gru::layer_input(cfg, int(k));
    storage.emplace_back(size_t(3 * H * I), ref_gru::kUnwritten);
    storage.emplace_back(size_t(3 * H * H), ref_gru::kUnwritten);
    storage.emplace_back(size_t(3 * H), ref_gru::kUnwritten);
    storage.emplace_back(size_t(3 * H), ref_gru::kUnwritten);
  }
  for (size_t k = 0; k < grads.size(); k++)
    grads[k] = {storage[4 * k].data(), storage[4 * k + 1].data(), storage[4 * k + 2].data(), storage[4 * k + 3].data()};
  model.backward(tape, c.d_out.data(), c.d_hid.data(), d_input.data(), d_h0.data(), grads, default_pool(), threads);
  std::vector<float> all = d_input;
  all.insert(all.end(), d_h0.begin(), d_h0.end());
  for (const std::vector<float>& g : storage) all.insert(all.end(), g.begin(), g.end());
  return all;
}

}  // namespace

int main() {
  // Small calls on every thread they ask for, so the callers meet in the pool (ctest sets this too;
  // the engine reads it once, at its first call).
  setenv("FASTGRU_THREAD_WORK", "0", 0);
  const std::vector<std::string> isas = available_isas();
  const KernelTable& best = kernels_for(isas.back());

  // One model, two layers, both directions; calls of 0-16 steps, 1-12 sequences, ragged or not,
  // with or without h0, either layout, on 1-4 threads (the engine takes at most the cores).
  GruConfig cfg;
  cfg.input_size = 11;
  cfg.hidden_size = 37;
  cfg.num_layers = 2;
  cfg.num_directions = 2;
  check::Rng rng(6);
  const ref_gru::Params<float> params = ref_gru::random_params(cfg, rng, 0.5f);
  const Model model(cfg, ref_gru::views(params), best);
  const int64_t steps[] = {9, 1, 16, 0, 5, 2, 12, 3};
  const int64_t batches[] = {3, 1, 7, 12, 2, 5};
  std::vector<Case> cases;
  for (int k = 0; k < 12; k++) {
    Case c;
    const int64_t T = steps[k % 8], B = batches[k % 6];
    c.call = ref_gru::random_call(cfg, T, B, k % 3 == 1, k % 2 == 0, k % 4 != 3, rng);
    if (k % 5 == 2) {
      std::vector<float> mask(size_t(T * B * 2 * cfg.hidden_size));
      for (float& v : mask) v = rng.below(4) == 0 ? 0.0f : 1.5f;
      c.call.masks.push_back(mask);
    }
    c.threads = 1 + k % 4;
    c.d_out = rng.floats(T * B * 2 * cfg.hidden_size, -1, 1);
    c.d_hid = rng.floats(int64_t(2) * 2 * B * cfg.hidden_size, -1, 1);
    c.what = ref_gru::describe(cfg, c.call) + check::format(" threads=%d", c.threads);
    cases.push_back(std::move(c));
  }
  const int n = int(cases.size());
  std::vector<std::vector<float>> want_forward, want_training;
  for (const Case& c : cases) {
    want_forward.push_back(forward_bits(model, c));
    want_training.push_back(training_bits(model, c));
  }

  // forward from four callers at once, each going through the cases in its own order.
  {
    const int rounds = 4;
    Mismatches bad;
    Overlap overlap;
    run_callers([&](int caller) {
      for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
          const int k = (i * (caller % 2 ? n - 1 : 1) + caller * 3 + r) % n;
          overlap.begin();
          const std::vector<float> got = forward_bits(model, cases[size_t(k)]);
          overlap.end();
          const std::string diff = compare(got, want_forward[size_t(k)]);
          if (!diff.empty()) bad.add(check::format("caller %d, %s: %s", caller, cases[size_t(k)].what.c_str(), diff.c_str()));
        }
    });
    EXPECT(bad.count == 0, "concurrent forward: %d of %d calls differ from the serial bits; first: %s", bad.count,
           overlap.calls.load(), bad.first.c_str());
    EXPECT(overlap.overlapped > 0, "concurrent forward: no call overlapped another (%d calls)", overlap.calls.load());
    std::printf("%s %d callers x %d forward calls on one %s model and the default pool (%d began while another ran): "
                "every result has the serial bits\n",
                bad.count == 0 && overlap.overlapped > 0 ? "ok  " : "FAIL", kCallers, rounds * n, best.name,
                overlap.overlapped.load());
  }

  // forward mixed with forward_train + backward, each training call on a tape of its own.
  {
    const int rounds = 2;
    Mismatches bad;
    Overlap overlap;
    run_callers([&](int caller) {
      for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
          const int k = (i + caller * 5 + r * 7) % n;
          const bool train = (i + caller) % 2 == 0;
          overlap.begin();
          const std::vector<float> got = train ? training_bits(model, cases[size_t(k)]) : forward_bits(model, cases[size_t(k)]);
          overlap.end();
          const std::string diff = compare(got, train ? want_training[size_t(k)] : want_forward[size_t(k)]);
          if (!diff.empty())
            bad.add(check::format("caller %d, %s %s: %s", caller, train ? "training" : "forward",
                                  cases[size_t(k)].what.c_str(), diff.c_str()));
        }
    });
    EXPECT(bad.count == 0, "forward mixed with training: %d of %d calls differ from the serial bits; first: %s",
           bad.count, overlap.calls.load(), bad.first.c_str());
    EXPECT(overlap.overlapped > 0, "forward mixed with training: no call overlapped another");
    std::printf("%s %d callers x %d calls, forward or forward_train + backward on tapes of their own, on one model: "
                "every result has the serial bits (%d began while another ran)\n",
                bad.count == 0 && overlap.overlapped > 0 ? "ok  " : "FAIL", kCallers, rounds * n,
                overlap.overlapped.load());
  }

  // backward from four callers at once on one tape, on 1-4 threads.
  {
    const Case& c = cases[0];
    std::vector<const float*> masks;
    for (const auto& m : c.call.masks) masks.push_back(m.data());
    const CallSizes sizes = check_batch(cfg, c.call.batch());
    std::vector<float> output(size_t(sizes.output)), hidden(size_t(sizes.h));
    const std::unique_ptr<Tape> tape = model.forward_train(c.call.batch(), masks.empty() ? nullptr : masks.data(),
                                                           output.data(), hidden.data(), default_pool(), 2);
    std::vector<std::vector<float>> want;
    for (int threads = 1; threads <= 4; threads++) want.push_back(backward_bits(model, *tape, c, threads));
    const int rounds = 6;
    Mismatches bad;
    Overlap overlap;
    run_callers([&](int caller) {
      for (int r = 0; r < rounds; r++) {
        const int threads = 1 + (caller + r) % 4;
        overlap.begin();
        const std::vector<float> got = backward_bits(model, *tape, c, threads);
        overlap.end();
        const std::string diff = compare(got, want[size_t(threads - 1)]);
        if (!diff.empty()) bad.add(check::format("caller %d, threads=%d: %s", caller, threads, diff.c_str()));
      }
    });
    EXPECT(bad.count == 0, "backward on one tape: %d of %d calls differ; first: %s", bad.count, overlap.calls.load(),
           bad.first.c_str());
    std::printf("%s %d callers x %d backward calls on one tape (%s): every result has the serial bits\n",
                bad.count == 0 ? "ok  " : "FAIL", kCallers, rounds, c.what.c_str());
  }

  // shared_model: the same Model for the same configuration, kernels and weight values, whoever asks
  // and with whose copy of the arrays; a different one when any of the three differs.
  {
    GruConfig small;
    small.input_size = 7;
    small.hidden_size = 16;
    GruConfig before = small;
    before.reset_after = false;
    const ref_gru::Params<float> w0 = ref_gru::random_params(small, rng, 0.5f);
    ref_gru::Params<float> w1 = w0;
    w1.w_hh[0][5] = std::nextafter(w1.w_hh[0][5], 1.0f);  // one bit apart
    struct Key {
      const GruConfig* cfg;
      const ref_gru::Params<float>* weights;
      const KernelTable* kt;
      std::string what;
    };
    std::vector<Key> keys = {{&small, &w0, &best, "weights 0"},
                             {&small, &w1, &best, "weights 1 (one bit apart)"},
                             {&before, &w0, &best, "weights 0, reset before"}};
    if (isas.size() > 1) keys.push_back({&small, &w0, &kernels_for(isas.front()), "weights 0, " + isas.front() + " kernels"});
    const int nk = int(keys.size());
    // The bits each key's model must give, from a model of its own.
    const ref_gru::Call probe = ref_gru::random_call(small, 3, 2, false, true, true, rng);
    std::vector<std::vector<float>> want;
    for (const Key& k : keys) {
      const Model own(*k.cfg, ref_gru::views(*k.weights), *k.kt);
      want.push_back(ref_gru::flatten(ref_gru::run_engine(own, probe, nullptr, nullptr, default_pool(), 1, false)));
    }

    // Every caller keeps every model it is given until the end, so none expires: for each key,
    // all callers must hold one and the same model.
    const int lookups = 24;
    std::vector<std::vector<std::shared_ptr<const Model>>> held(kCallers);
    run_callers([&](int caller) {
      std::vector<ref_gru::Params<float>> copies;  // this caller's arrays, same values
      for (const Key& k : keys) copies.push_back(*k.weights);
      for (int i = 0; i < lookups; i++) {
        const int k = (i + caller) % nk;
        held[size_t(caller)].push_back(shared_model(*keys[size_t(k)].cfg, ref_gru::views(copies[size_t(k)]), *keys[size_t(k)].kt));
      }
    });
    int wrong = 0;
    std::vector<const Model*> first(size_t(nk), nullptr);
    for (int caller = 0; caller < kCallers; caller++)
      for (int i = 0; i < lookups; i++) {
        const int k = (i + caller) % nk;
        const Model* m = held[size_t(caller)][size_t(i)].get();
        if (!first[size_t(k)]) first[size_t(k)] = m;
        if (m != first[size_t(k)] && wrong++ < 3)
          EXPECT(false, "shared_model, %s: caller %d's lookup %d returned another model", keys[size_t(k)].what.c_str(),
                 caller, i);
      }
    for (int a = 0; a < nk; a++)
      for (int b = a + 1; b < nk; b++)
        if (first[size_t(a)] == first[size_t(b)] && wrong++ < 6)
          EXPECT(false, "shared_model: %s and %s share a model", keys[size_t(a)].what.c_str(), keys[size_t(b)].what.c_str());
    for (int k = 0; k < nk; k++) {
      const std::vector<float> got =
          ref_gru::flatten(ref_gru::run_engine(*first[size_t(k)], probe, nullptr, nullptr, default_pool(), 1, false));
      const std::string diff = compare(got, want[size_t(k)]);
      if (!diff.empty()) {
        wrong++;
        EXPECT(false, "shared_model, %s: forward differs from a model of its own: %s", keys[size_t(k)].what.c_str(),
               diff.c_str());
      }
    }
    EXPECT(wrong == 0, "shared_model while held: %d wrong", wrong);
    std::printf("%s %d callers x %d shared_model lookups of %d keys, each with its own copy of the weights: one model "
                "per key, distinct across keys, each with its key's bits\n",
                wrong ? "FAIL" : "ok  ", kCallers, lookups, nk);
    held.clear();

    // Callers take a model, look it up again while holding it (must be the same one), run it, and
    // drop it, so entries expire and are created again while other callers look them up.
    const int churn = 40;
    Mismatches bad;
    run_callers([&](int caller) {
      std::vector<ref_gru::Params<float>> copies;
      for (const Key& k : keys) copies.push_back(*k.weights);
      for (int i = 0; i < churn; i++) {
        const int k = (i * (caller + 1)) % nk;
        const Key& key = keys[size_t(k)];
        std::shared_ptr<const Model> m = shared_model(*key.cfg, ref_gru::views(copies[size_t(k)]), *key.kt);
        const std::shared_ptr<const Model> again = shared_model(*key.cfg, ref_gru::views(*key.weights), *key.kt);
        if (again != m) bad.add(check::format("caller %d, %s: a second lookup while holding the model returned another",
                                              caller, key.what.c_str()));
        if (i % 4 == caller) {
          const std::string diff = compare(
              ref_gru::flatten(ref_gru::run_engine(*m, probe, nullptr, nullptr, default_pool(), 2, false)), want[size_t(k)]);
          if (!diff.empty()) bad.add(check::format("caller %d, %s: forward %s", caller, key.what.c_str(), diff.c_str()));
        }
      }
    });
    EXPECT(bad.count == 0, "shared_model while models expire: %d wrong; first: %s", bad.count, bad.first.c_str());
    std::printf("%s %d callers x %d take-run-drop rounds through shared_model (entries expiring and created again): "
                "a held model is the one found, with its key's bits\n",
                bad.count == 0 ? "ok  " : "FAIL", kCallers, churn);

    // A hash collision (forced: every lookup given the same hash): weights one bit apart still get
    // models of their own, each with its own bits, and equal weights still share one.
    Mismatches collide;
    std::vector<std::vector<std::shared_ptr<const Model>>> got(kCallers);
    run_callers([&](int caller) {
      for (int i = 0; i < 8; i++) {
        const ref_gru::Params<float>& w = (i + caller) % 2 ? w1 : w0;
        got[size_t(caller)].push_back(shared_model_hashed(small, ref_gru::views(w), best, 42, 42));
      }
    });
    const Model* by_weights[2] = {nullptr, nullptr};
    for (int caller = 0; caller < kCallers; caller++)
      for (int i = 0; i < 8; i++) {
        const int which = (i + caller) % 2;
        const Model* m = got[size_t(caller)][size_t(i)].get();
        if (!by_weights[which]) by_weights[which] = m;
        if (m != by_weights[which]) collide.add(check::format("caller %d: weights %d got another model", caller, which));
      }
    if (by_weights[0] == by_weights[1]) collide.add("weights one bit apart share a model under one hash");
    for (int which = 0; which < 2 && by_weights[0] != by_weights[1]; which++) {
      const std::string diff = compare(
          ref_gru::flatten(ref_gru::run_engine(*by_weights[which], probe, nullptr, nullptr, default_pool(), 1, false)),
          want[size_t(which)]);
      if (!diff.empty()) collide.add(check::format("weights %d under a colliding hash: forward %s", which, diff.c_str()));
    }
    EXPECT(collide.count == 0, "shared_model under a hash collision: %d wrong; first: %s", collide.count,
           collide.first.c_str());
    std::printf("%s %d callers x 8 lookups of two weight sets one bit apart under one hash: a model for each\n",
                collide.count == 0 ? "ok  " : "FAIL", kCallers);
  }
  return check::finish("concurrency");
}
