// The core's errors: check_config and check_batch reject negative sizes, products that overflow and
// lengths out of range with fastgru::Error and its stable code (and accept the edges); Model rejects
// missing parameters; kernels_for refuses an ISA this CPU or build lacks with ERR_ISA instead of
// handing out a table that would fault; FASTGRU_ISA is honoured (checked in child processes, since
// the choice is made once per process); fma_peak_gflops measures something positive.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "fma_peak.h"
#include "gru.h"
#include "gru_reference.h"
#include "model_cache.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

// Runs f, expecting fastgru::Error with `code`; the message must name `mention` when given.
#define EXPECT_ERROR(code, mention, ...) expect_error(__FILE__, __LINE__, code, mention, [&] { (void)(__VA_ARGS__); }, #__VA_ARGS__)

void expect_error(const char* file, int line, const std::string& code, const std::string& mention,
                  const std::function<void()>& f, const char* text) {
  try {
    f();
    check::expect(false, file, line, check::format("%s: expected Error %s, nothing thrown", text, code.c_str()));
  } catch (const Error& e) {
    const bool ok = e.code() == code && (mention.empty() || std::string(e.what()).find(mention) != std::string::npos);
    check::expect(ok, file, line,
                  check::format("%s: expected Error %s naming '%s', got %s: %s", text, code.c_str(), mention.c_str(),
                                e.code().c_str(), e.what()));
    if (ok) std::printf("ok   %s -> %s: %s\n", text, e.code().c_str(), e.what());
  } catch (const std::exception& e) {
    check::expect(false, file, line, check::format("%s: expected Error %s, got std::exception: %s", text, code.c_str(), e.what()));
  }
}

GruConfig config(int I, int H, int L = 1, int D = 1) {
  GruConfig c;
  c.input_size = I;
  c.hidden_size = H;
  c.num_layers = L;
  c.num_directions = D;
  return c;
}

SequenceBatch batch(int64_t T, int64_t B, const int32_t* lengths = nullptr) {
  SequenceBatch b;
  b.steps = T;
  b.batch = B;
  b.lengths = lengths;
  return b;
}

// Exit status of a child process that runs body with FASTGRU_ISA set (unset when value is null).
int in_child(const char* value, const std::function<int()>& body) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    if (value) setenv("FASTGRU_ISA", value, 1);
    else unsetenv("FASTGRU_ISA");
    std::_Exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

int main() {
  // FASTGRU_ISA, first, in children forked before this process starts any thread.
  const std::vector<std::string> isas = available_isas();
  {
    const int best = in_child(nullptr, [&] { return std::string(active_kernels().name) == isas.back() ? 0 : 1; });
    EXPECT(best == 0, "active_kernels() without FASTGRU_ISA: expected %s (child status %d)", isas.back().c_str(), best);
    const int forced = in_child("ref", [] { return std::string(active_kernels().name) == "ref" ? 0 : 1; });
    EXPECT(forced == 0, "FASTGRU_ISA=ref: expected the ref table (child status %d)", forced);
    for (const char* bad : {"bogus", "avx512", "neon"}) {
      if (std::find(isas.begin(), isas.end(), bad) != isas.end()) continue;
      const int st = in_child(bad, [] {
        for (int attempt = 0; attempt < 2; attempt++) {  // the error is rethrown on every call
          try {
            active_kernels();
            return 1;
          } catch (const Error& e) {
            if (e.code() != "ERR_ISA") return 2;
          }
        }
        return 0;
      });
      EXPECT(st == 0, "FASTGRU_ISA=%s: expected ERR_ISA from active_kernels() on every call (child status %d)", bad, st);
      if (st == 0) std::printf("ok   FASTGRU_ISA=%s -> active_kernels() throws ERR_ISA, twice\n", bad);
    }
    std::printf("ok   active_kernels(): %s by default, ref when forced\n", isas.back().c_str());
  }

  // kernels_for.
  EXPECT(isas.front() == "ref", "available_isas() = %s: ref first", join(isas).c_str());
  for (const std::string& isa : isas) EXPECT(std::string(kernels_for(isa).name) == isa, "kernels_for(%s)", isa.c_str());
  const CpuFeatures& f = cpu_features();
  std::printf("cpu: avx2+fma %d, avx512f %d, neon %d; available: %s\n", f.avx2_fma, f.avx512f, f.neon, join(isas).c_str());
  if (f.avx512f) std::printf("skip kernels_for(\"avx512\") refusal: this CPU has AVX-512F\n");
  else EXPECT_ERROR("ERR_ISA", "avx512", kernels_for("avx512"));
  if (!f.avx2_fma) EXPECT_ERROR("ERR_ISA", "avx2", kernels_for("avx2"));
  if (!f.neon) EXPECT_ERROR("ERR_ISA", "neon", kernels_for("neon"));
  EXPECT_ERROR("ERR_ISA", "bogus", kernels_for("bogus"));
  EXPECT_ERROR("ERR_ISA", "", kernels_for(""));
  EXPECT_ERROR("ERR_ISA", "AVX2", kernels_for("AVX2"));

  // check_config.
  EXPECT_ERROR("ERR_OPTION", "inputSize", check_config(config(0, 4)));
  EXPECT_ERROR("ERR_OPTION", "inputSize", check_config(config(-3, 4)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(4, 0)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(4, -1)));
  EXPECT_ERROR("ERR_OPTION", "numLayers", check_config(config(4, 4, 0)));
  EXPECT_ERROR("ERR_OPTION", "numLayers", check_config(config(4, 4, -2)));
  EXPECT_ERROR("ERR_OPTION", "numDirections", check_config(config(4, 4, 1, 0)));
  EXPECT_ERROR("ERR_OPTION", "numDirections", check_config(config(4, 4, 1, 3)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(INT_MAX, INT_MAX)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(1, INT_MAX)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(INT_MAX, 1)));
  EXPECT_ERROR("ERR_OPTION", "hiddenSize", check_config(config(1, 20000, 1, 2)));  // 3H x 2H = 2.4e9 > 2^30
  {
    bool ok = true;
    try {
      check_config(config(1, 1));
      check_config(config(1 << 20, 300));  // 3 * 300 * 2^20 < 2^30
      check_config(config(7, 5, 3, 2));
    } catch (const std::exception& e) {
      ok = false;
      std::printf("threw: %s\n", e.what());
    }
    EXPECT(ok, "check_config accepts valid configs");
  }

  // check_batch.
  const GruConfig c = config(3, 5, 2, 2);
  EXPECT_ERROR("ERR_SHAPE", "steps", check_batch(c, batch(-1, 2)));
  EXPECT_ERROR("ERR_SHAPE", "batch", check_batch(c, batch(2, -1)));
  EXPECT_ERROR("ERR_SHAPE", "steps", check_batch(c, batch(INT64_MIN, 1)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(c, batch(INT64_MAX, 2)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(c, batch(int64_t(1) << 32, int64_t(1) << 32)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(c, batch(int64_t(1) << 40, 1)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(c, batch(1, INT64_MAX / 2)));
  // Sizes whose products fit in int64 but not in the engine's int32 indices (lengths and the
  // schedule are int32, GateStep::rows is int) or whose state alone is beyond the 2^40 limit.
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(config(1, 1), batch((int64_t(1) << 31) + 5, 1)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(config(1, 1), batch(1, (int64_t(1) << 31) + 1)));
  EXPECT_ERROR("ERR_SHAPE", "", check_batch(c, batch(0, int64_t(1) << 50)));
  {
    const int32_t neg[] = {2, -1, 0};
    const int32_t big[] = {2, 3, 4};
    const int32_t min[] = {INT32_MIN, 0, 0};
    EXPECT_ERROR("ERR_ARGUMENT", "lengths[1]", check_batch(c, batch(3, 3, neg)));
    EXPECT_ERROR("ERR_ARGUMENT", "lengths[2]", check_batch(c, batch(3, 3, big)));
    EXPECT_ERROR("ERR_ARGUMENT", "lengths[0]", check_batch(c, batch(3, 3, min)));
    const int32_t edge[] = {0, 3, 1};
    const CallSizes s = check_batch(c, batch(3, 3, edge));
    EXPECT(s.x == 3 * 3 * 3 && s.h == 2 * 2 * 3 * 5 && s.output == 3 * 3 * 2 * 5,
           "check_batch sizes: x %lld h %lld output %lld, expected 27, 60, 90", (long long)s.x, (long long)s.h,
           (long long)s.output);
    const CallSizes z = check_batch(c, batch(0, 0));
    EXPECT(z.x == 0 && z.h == 0 && z.output == 0, "check_batch(T=0, B=0) sizes %lld %lld %lld", (long long)z.x,
           (long long)z.h, (long long)z.output);
    std::printf("ok   check_batch accepts lengths 0..steps and T = B = 0, and returns the element counts\n");
  }

  // Model construction and calls.
  {
    check::Rng rng(5);
    GruConfig mc = config(3, 5, 2, 2);
    const ref_gru::Params<float> p = ref_gru::random_params(mc, rng, 0.5f);
    std::vector<DirectionWeights> w = ref_gru::views(p);
    const KernelTable& kt = kernels_for(isas.back());
    EXPECT_ERROR("ERR_OPTION", "hiddenSize", Model(config(3, 0), w, kt));
    std::vector<DirectionWeights> fewer(w.begin(), w.end() - 1);
    EXPECT_ERROR("ERR_STATE_DICT", "weights", Model(mc, fewer, kt));
    std::vector<DirectionWeights> missing = w;
    missing[2].w_hh = nullptr;
    EXPECT_ERROR("ERR_STATE_DICT", "weights[2]", Model(mc, missing, kt));
    missing = w;
    missing[1].b_ih = nullptr;
    EXPECT_ERROR("ERR_STATE_DICT", "weights[1]", Model(mc, missing, kt));
    GruConfig nobias = mc;
    nobias.bias = false;
    missing = w;
    for (DirectionWeights& d : missing) d.b_ih = d.b_hh = nullptr;
    bool built = true;
    try {
      Model m(nobias, missing, kt);
      EXPECT(m.packed_bytes() > 0, "packed_bytes %lld", (long long)m.packed_bytes());
    } catch (const std::exception& e) {
      built = false;
    }
    EXPECT(built, "Model without bias accepts null biases");

    Model model(mc, w, kt);
    std::vector<float> out(1000), hid(1000);
    EXPECT_ERROR("ERR_SHAPE", "steps", model.forward(batch(-2, 1), out.data(), hid.data(), default_pool(), 2));
    const int32_t bad[] = {5};
    EXPECT_ERROR("ERR_ARGUMENT", "lengths[0]", model.forward(batch(4, 1, bad), out.data(), hid.data(), default_pool(), 2));
    EXPECT_ERROR("ERR_ARGUMENT", "lengths[0]",
                 model.forward_train(batch(4, 1, bad), nullptr, out.data(), hid.data(), default_pool(), 2));
    ref_gru::Call call = ref_gru::random_call(mc, 2, 2, false, false, false, rng);
    std::unique_ptr<Tape> tape = model.forward_train(call.batch(), nullptr, out.data(), hid.data(), default_pool(), 2);
    EXPECT(tape->bytes() > 0, "tape bytes %lld", (long long)tape->bytes());
    std::vector<DirectionGradients> one(1);
    EXPECT_ERROR("ERR_ARGUMENT", "grads", model.backward(*tape, nullptr, nullptr, out.data(), hid.data(), one, default_pool(), 2));
  }

  // shared_model: one Model per distinct weight values, while someone holds it.
  {
    const GruConfig c = config(5, 9, 2, 2);
    check::Rng rng(77);
    ref_gru::Params<float> p = ref_gru::random_params(c, rng, 0.5f);
    const KernelTable& kt = kernels_for(isas.back());
    std::shared_ptr<const Model> a = shared_model(c, ref_gru::views(p), kt);
    ref_gru::Params<float> copy = p;  // the same values at other addresses
    std::shared_ptr<const Model> b = shared_model(c, ref_gru::views(copy), kt);
    EXPECT(a == b, "shared_model: the same values give the same model");
    copy.w_hh[3][7] += 1e-6f;
    std::shared_ptr<const Model> d = shared_model(c, ref_gru::views(copy), kt);
    EXPECT(d != a, "shared_model: one changed value gives another model");
    GruConfig other = c;
    other.reset_after = !c.reset_after;
    EXPECT(shared_model(other, ref_gru::views(p), kt) != a, "shared_model: another form gives another model");
    const Model* first = a.get();
    a.reset();
    b.reset();
    std::shared_ptr<const Model> again = shared_model(c, ref_gru::views(p), kt);
    EXPECT(again && again->config().hidden_size == 9, "shared_model: rebuilt after its users let it go (%p before)", (const void*)first);
    EXPECT_ERROR("ERR_STATE_DICT", "layer-directions", shared_model(c, std::vector<DirectionWeights>(1), kt));
    std::printf("ok   shared_model: shared by value, distinct for other values or forms, rebuilt when released\n");
  }

  // fma_peak_gflops: positive and finite on every ISA.
  for (const std::string& isa : isas) {
    const double g = fma_peak_gflops(kernels_for(isa), default_pool(), 2, 0.02);
    EXPECT(std::isfinite(g) && g > 0, "fma_peak_gflops(%s) = %g", isa.c_str(), g);
    std::printf("ok   fma_peak_gflops(%s, 2 threads, 20 ms) = %.1f GFLOP/s\n", isa.c_str(), g);
  }
  return check::finish("model_errors");
}
