// Model::forward and forward_train against the naive double-precision GRU (gru_reference.h), to
// 1e-5 relative (|got - want| <= 1e-5 max(1, |want|), the JS tests' measure): both forms, 1-3
// layers, one or two directions, batch-first or not, lengths null or unsorted with zeros, h0 or
// null, bias or not, dropout masks, sizes that are multiples of nothing. Every output element is
// written (buffers start full of 1e30), padded steps are exactly 0, and forward_train gives the
// same bits as forward. Every ISA this CPU runs, plus the emulated widths 4 and 16.
#include <algorithm>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "error.h"
#include "emulated_kernels.h"
#include "gru_reference.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

struct Size {
  int I, H;
  int64_t T, B;
};
// H and I multiples of neither 8 nor 24 (and some of 8, which pad differently at width 16 or 24).
const Size kSizes[] = {{3, 5, 4, 3}, {11, 13, 6, 5}, {1, 1, 3, 4}, {37, 30, 5, 7}, {8, 45, 7, 6}, {20, 16, 5, 9}};

double worst_output = 0, worst_hidden = 0;

// The output with the steps past each sequence's length set to 0, as the reference has them.
std::vector<float> running_steps(std::vector<float> out, const GruConfig& cfg, const ref_gru::Call& call) {
  const int DH = cfg.num_directions * cfg.hidden_size;
  for (int64_t t = 0; t < call.T; t++)
    for (int64_t b = 0; b < call.B; b++)
      if (t >= call.length(b))
        for (int k = 0; k < DH; k++) out[size_t((call.batch_first ? b * call.T + t : t * call.B + b) * DH + k)] = 0.0f;
  return out;
}

void check_case(const KernelTable& kt, const GruConfig& cfg, const ref_gru::Call& call, const ref_gru::Params<float>& p,
                ThreadPool& pool, int threads) {
  const std::string what = std::string(kt.name) + " " + ref_gru::describe(cfg, call) + " threads=" + std::to_string(threads);
  Model model(cfg, ref_gru::views(p), kt);
  const ref_gru::EngineRun e = ref_gru::run_engine(model, call, nullptr, nullptr, pool, threads);

  ref_gru::Call plain = call;
  plain.masks.clear();
  const ref_gru::Result<double> want = ref_gru::forward(cfg, p, plain);
  int64_t at;
  // Accuracy over the steps each sequence runs; the padded steps are checked on their own below.
  const std::vector<float> out = running_steps(e.output, cfg, call);
  const double eo = check::max_rel_error(out.data(), want.output.data(), int64_t(want.output.size()), 1.0, &at);
  EXPECT(eo <= 1e-5, "%s: output[%lld] = %.9g, reference %.12g (error %.3g)", what.c_str(), (long long)at,
         at >= 0 ? out[size_t(at)] : 0.0f, at >= 0 ? want.output[size_t(at)] : 0.0, eo);
  const double eh = check::max_rel_error(e.hidden.data(), want.hidden.data(), int64_t(want.hidden.size()), 1.0, &at);
  EXPECT(eh <= 1e-5, "%s: hidden[%lld] = %.9g, reference %.12g (error %.3g)", what.c_str(), (long long)at,
         at >= 0 ? e.hidden[size_t(at)] : 0.0f, at >= 0 ? want.hidden[size_t(at)] : 0.0, eh);
  worst_output = std::max(worst_output, eo);
  worst_hidden = std::max(worst_hidden, eh);

  // Steps past a sequence's length: exactly zero, written by the engine (the buffer held 1e30).
  const int DH = cfg.num_directions * cfg.hidden_size;
  int64_t bad = -1;
  for (int64_t t = 0; t < call.T && bad < 0; t++)
    for (int64_t b = 0; b < call.B && bad < 0; b++)
      if (t >= call.length(b))
        for (int k = 0; k < DH; k++) {
          const int64_t idx = (call.batch_first ? b * call.T + t : t * call.B + b) * DH + k;
          if (check::bits(e.output[size_t(idx)]) != 0) {
            bad = idx;
            break;
          }
        }
  EXPECT(bad < 0, "%s: output[%lld] = %.9g past its sequence's length: expected +0 (gru.h: output is fully written)",
         what.c_str(), (long long)bad, bad >= 0 ? e.output[size_t(bad)] : 0.0f);

  if (call.masks.empty()) {
    EXPECT_SAME_BITS(e.train_output.data(), e.output.data(), int64_t(e.output.size()), "%s: forward_train output vs forward",
                     what.c_str());
    EXPECT_SAME_BITS(e.train_hidden.data(), e.hidden.data(), int64_t(e.hidden.size()), "%s: forward_train hidden vs forward",
                     what.c_str());
  } else {
    const ref_gru::Result<double> masked = ref_gru::forward(cfg, p, call);
    const std::vector<float> tout = running_steps(e.train_output, cfg, call);
    const double et = check::max_rel_error(tout.data(), masked.output.data(), int64_t(masked.output.size()), 1.0, &at);
    EXPECT(et <= 1e-5, "%s: forward_train output[%lld] = %.9g, masked reference %.12g (error %.3g)", what.c_str(),
           (long long)at, at >= 0 ? tout[size_t(at)] : 0.0f, at >= 0 ? masked.output[size_t(at)] : 0.0, et);
    const double eth = check::max_rel_error(e.train_hidden.data(), masked.hidden.data(), int64_t(masked.hidden.size()), 1.0, &at);
    EXPECT(eth <= 1e-5, "%s: forward_train hidden[%lld] = %.9g, masked reference %.12g (error %.3g)", what.c_str(),
           (long long)at, at >= 0 ? e.train_hidden[size_t(at)] : 0.0f, at >= 0 ? masked.hidden[size_t(at)] : 0.0, eth);
  }
}

}  // namespace

int main() {
  std::vector<const KernelTable*> tables;
  for (const std::string& isa : available_isas()) tables.push_back(&kernels_for(isa));
  tables.push_back(&emulated::width4());
  tables.push_back(&emulated::width16());
  std::printf("tables: %s, emulated-w4, emulated-w16\n", join(available_isas()).c_str());

  ThreadPool pool;
  int cases = 0, variant = 0;
  for (const KernelTable* kt : tables) {
    const int64_t failures = check::state().failures;
    int mine = 0;
    for (int after = 1; after >= 0; after--)
      for (int layers = 1; layers <= 3; layers++)
        for (int dirs = 1; dirs <= 2; dirs++)
          for (int shape = 0; shape < 4; shape++) {  // {time-first, batch-first} x {lengths null, ragged}
            variant++;
            const Size& s = kSizes[size_t(variant) % (sizeof kSizes / sizeof kSizes[0])];
            GruConfig cfg;
            cfg.input_size = s.I;
            cfg.hidden_size = s.H;
            cfg.num_layers = layers;
            cfg.num_directions = dirs;
            cfg.reset_after = after == 1;
            cfg.bias = variant % 3 != 0;
            check::Rng rng(uint64_t(variant) * 7919);
            const ref_gru::Params<float> p = ref_gru::random_params(cfg, rng, 0.6f);
            ref_gru::Call call = ref_gru::random_call(cfg, s.T, s.B, shape & 1, variant % 2 == 0, shape & 2, rng);
            if (layers > 1 && variant % 4 == 1)
              for (int l = 0; l + 1 < layers; l++) {
                std::vector<float> m(size_t(s.T * s.B * dirs * s.H));
                for (float& v : m) v = rng.below(4) == 0 ? 0.0f : 1.0f / 0.75f;
                call.masks.push_back(m);
              }
            check_case(*kt, cfg, call, p, pool, 1 + variant % 3);
            mine++;
          }
    // Edge shapes: T = 0, B = 0, all lengths 0, one step, H = 1.
    for (int edge = 0; edge < 5; edge++) {
      GruConfig cfg;
      cfg.input_size = 3;
      cfg.hidden_size = edge == 4 ? 1 : 7;
      cfg.num_layers = 2;
      cfg.num_directions = 2;
      cfg.reset_after = edge % 2 == 0;
      check::Rng rng(uint64_t(edge) + 99);
      const ref_gru::Params<float> p = ref_gru::random_params(cfg, rng, 0.6f);
      const int64_t T = edge == 0 ? 0 : edge == 3 ? 1 : 4, B = edge == 1 ? 0 : 3;
      ref_gru::Call call = ref_gru::random_call(cfg, T, B, edge == 3, true, false, rng);
      if (edge == 2) call.lengths.assign(size_t(B), 0);
      for (int threads : {1, 2}) check_case(*kt, cfg, call, p, pool, threads);  // 1: the row-group path
      mine++;
    }
    cases += mine;
    std::printf("%s %s: %d cases (both forms, layers 1-3, directions 1-2, batch-first, ragged lengths, h0, bias, "
                "masks, T=0, B=0, all lengths 0) within 1e-5 of the double-precision GRU, padded steps 0, "
                "forward_train == forward bit for bit\n",
                check::state().failures == failures ? "ok  " : "FAIL", kt->name, mine);
  }
  std::printf("max error vs double: output %.3g, hidden %.3g over %d cases\n", worst_output, worst_hidden, cases);
  return check::finish("model_forward");
}
