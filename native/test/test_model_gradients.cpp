// Model::backward against finite differences of the loss
//   loss = sum(output · g_out) + sum(hidden · g_hidden)
// for every parameter, every input element and every element of h0, in small cases (both forms,
// 1-3 layers, bidirectional, ragged unsorted lengths with a 0, masks, bias or not):
//  (a) central differences of the double-precision reference GRU (step 1e-6): the gradients must
//      match to 1e-4 · max(1, |g|) — the check of the backward pass's mathematics;
//  (b) central differences of the engine's own float32 forward (step 2^-7), the gradient mode of
//      ggml: the tolerance is the sum of the three errors such a difference carries, each measured
//      rather than guessed: truncation (the same difference taken on the double reference, minus
//      its step-1e-6 value, doubled), rounding (2 x the forward's measured float error in the loss
//      over the step, times a margin of 4), and the float gradient's own 1e-5 · max(1, |g|).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "gru_reference.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

struct Slot {
  std::string name;
  float* f;       // the engine's copy of the value
  double* d;      // the reference's copy
  float grad;     // the engine's gradient
};

struct Problem {
  GruConfig cfg;
  ref_gru::Call call;                 // float inputs for the engine (x, h0 perturbed in place)
  ref_gru::Params<float> pf;          // float parameters for the engine
  ref_gru::Params<double> pd;         // the same values, perturbed in double for the reference
  std::vector<double> xd, h0d;
  std::vector<float> g_out, g_hid;

  double loss(const std::vector<double>& out, const std::vector<double>& hid) const {
    double l = 0;
    for (size_t i = 0; i < out.size(); i++) l += out[i] * double(g_out[i]);
    for (size_t i = 0; i < hid.size(); i++) l += hid[i] * double(g_hid[i]);
    return l;
  }
  double loss_double() const {
    const ref_gru::Result<double> r = ref_gru::forward(cfg, pd, call, xd, call.h0.empty() ? nullptr : &h0d);
    return loss(r.output, r.hidden);
  }
  // The engine's forward (forward_train when there are masks), in float; the loss summed in double.
  double loss_float(ThreadPool& pool, std::vector<double>* out_d = nullptr, std::vector<double>* hid_d = nullptr) const {
    Model model(cfg, ref_gru::views(pf), kernels_for(available_isas().back()));
    const CallSizes sizes = check_batch(cfg, call.batch());
    std::vector<float> out(size_t(sizes.output), 0.0f), hid(size_t(sizes.h), 0.0f);
    if (call.masks.empty()) {
      model.forward(call.batch(), out.data(), hid.data(), pool, 1);
    } else {
      std::vector<const float*> masks;
      for (const auto& m : call.masks) masks.push_back(m.data());
      model.forward_train(call.batch(), masks.data(), out.data(), hid.data(), pool, 1);
    }
    std::vector<double> o(out.begin(), out.end()), h(hid.begin(), hid.end());
    if (out_d) *out_d = o;
    if (hid_d) *hid_d = h;
    return loss(o, h);
  }
};

void run_problem(Problem& pb, ThreadPool& pool) {
  const GruConfig& c = pb.cfg;
  const std::string what = ref_gru::describe(c, pb.call);
  Model model(c, ref_gru::views(pb.pf), kernels_for(available_isas().back()));
  const ref_gru::EngineRun e = ref_gru::run_engine(model, pb.call, &pb.g_out, &pb.g_hid, pool, 2);

  std::vector<Slot> slots;
  for (size_t k = 0; k < pb.pf.size(); k++) {
    auto add = [&](const char* n, std::vector<float>& f, std::vector<double>& d, const std::vector<float>& g) {
      for (size_t i = 0; i < f.size(); i++) slots.push_back({check::format("%s[%zu][%zu]", n, k, i), &f[i], &d[i], g[i]});
    };
    add("w_ih", pb.pf.w_ih[k], pb.pd.w_ih[k], e.grads.w_ih[k]);
    add("w_hh", pb.pf.w_hh[k], pb.pd.w_hh[k], e.grads.w_hh[k]);
    add("b_ih", pb.pf.b_ih[k], pb.pd.b_ih[k], e.grads.b_ih[k]);
    add("b_hh", pb.pf.b_hh[k], pb.pd.b_hh[k], e.grads.b_hh[k]);
  }
  for (size_t i = 0; i < pb.call.x.size(); i++) slots.push_back({check::format("x[%zu]", i), &pb.call.x[i], &pb.xd[i], e.d_input[i]});
  for (size_t i = 0; i < pb.call.h0.size(); i++)
    slots.push_back({check::format("h0[%zu]", i), &pb.call.h0[i], &pb.h0d[i], e.d_h0[i]});

  // The float forward's own error, measured once against the reference: bounds the rounding noise
  // of every float loss below.
  std::vector<double> fo, fh;
  pb.loss_float(pool, &fo, &fh);
  const ref_gru::Result<double> exact = ref_gru::forward(c, pb.pd, pb.call, pb.xd, pb.call.h0.empty() ? nullptr : &pb.h0d);
  double forward_error = 0;
  for (size_t i = 0; i < fo.size(); i++) forward_error += std::fabs(fo[i] - exact.output[i]) * std::fabs(pb.g_out[i]);
  for (size_t i = 0; i < fh.size(); i++) forward_error += std::fabs(fh[i] - exact.hidden[i]) * std::fabs(pb.g_hid[i]);

  double worst_a = 0, worst_b = 0, worst_b_abs = 0;
  std::string worst_a_at, worst_b_at;
  for (const Slot& s : slots) {
    // (a) the reference in double, step 1e-6.
    const double d0 = *s.d;
    const double h = 1e-6;
    *s.d = d0 + h;
    const double lp = pb.loss_double();
    *s.d = d0 - h;
    const double lm = pb.loss_double();
    *s.d = d0;
    const double fd = (lp - lm) / (2 * h);
    const double ea = std::fabs(double(s.grad) - fd) / std::max(1.0, std::fabs(fd));
    if (!(ea <= worst_a)) {
      worst_a = ea;
      worst_a_at = s.name;
    }
    EXPECT(ea <= 1e-4, "%s: d loss / d %s = %.9g, double-precision central difference %.9g (error %.3g)", what.c_str(),
           s.name.c_str(), s.grad, fd, ea);

    // (b) the engine's float forward, step 2^-7, at the float points it can represent.
    const float f0 = *s.f;
    const float fp = f0 + 0x1p-7f, fm = f0 - 0x1p-7f;
    const double step = double(fp) - double(fm);
    *s.f = fp;
    const double flp = pb.loss_float(pool);
    *s.f = fm;
    const double flm = pb.loss_float(pool);
    *s.f = f0;
    const double ffd = (flp - flm) / step;
    // Truncation at this step, from the reference at the same two points.
    *s.d = double(fp);
    const double dlp = pb.loss_double();
    *s.d = double(fm);
    const double dlm = pb.loss_double();
    *s.d = d0;
    const double truncation = std::fabs((dlp - dlm) / step - fd);
    const double rounding = 4 * 2 * forward_error / step;
    const double tol = 2 * truncation + rounding + 1e-5 * std::max(1.0, std::fabs(double(s.grad)));
    const double eb = std::fabs(double(s.grad) - ffd);
    if (!(eb / tol <= worst_b)) {
      worst_b = eb / tol;
      worst_b_at = s.name;
    }
    worst_b_abs = std::max(worst_b_abs, eb);
    EXPECT(eb <= tol,
           "%s: d loss / d %s = %.9g, float32 central difference %.9g: error %.3g over tolerance %.3g "
           "(truncation %.3g, rounding %.3g)",
           what.c_str(), s.name.c_str(), s.grad, ffd, eb, tol, truncation, rounding);
  }
  std::printf("%s %s: %zu gradients (all parameters, x, h0): max error %.2e vs double central differences (at %s); "
              "vs float32 central differences max |error| %.2e, max error/tolerance %.2f (at %s)\n",
              check::state().failures ? "FAIL" : "ok  ", what.c_str(), slots.size(), worst_a, worst_a_at.c_str(),
              worst_b_abs, worst_b, worst_b_at.c_str());
}

Problem make(int I, int H, int L, int D, bool after, bool bias, int64_t T, int64_t B, bool batch_first, bool h0,
             std::vector<int32_t> lengths, bool masks, uint64_t seed) {
  Problem pb;
  pb.cfg.input_size = I;
  pb.cfg.hidden_size = H;
  pb.cfg.num_layers = L;
  pb.cfg.num_directions = D;
  pb.cfg.reset_after = after;
  pb.cfg.bias = bias;
  check::Rng rng(seed);
  pb.pf = ref_gru::random_params(pb.cfg, rng, 0.7f);
  pb.pd = ref_gru::convert<double>(pb.pf);
  pb.call = ref_gru::random_call(pb.cfg, T, B, batch_first, h0, false, rng);
  pb.call.lengths = lengths;
  if (masks)
    for (int l = 0; l + 1 < L; l++) {
      std::vector<float> m(size_t(T * B * D * H));
      for (float& v : m) v = rng.below(3) == 0 ? 0.0f : 1.5f;
      pb.call.masks.push_back(m);
    }
  pb.xd.assign(pb.call.x.begin(), pb.call.x.end());
  pb.h0d.assign(pb.call.h0.begin(), pb.call.h0.end());
  pb.g_out = rng.floats(T * B * D * H, -1, 1);
  pb.g_hid = rng.floats(int64_t(L) * D * B * H, -1, 1);
  return pb;
}

}  // namespace

int main() {
  ThreadPool pool;
  std::vector<Problem> problems;
  problems.push_back(make(3, 5, 2, 2, true, true, 4, 3, false, true, {3, 4, 0}, false, 11));
  problems.push_back(make(3, 5, 2, 2, false, false, 4, 3, true, false, {}, false, 12));
  problems.push_back(make(4, 7, 1, 1, false, true, 5, 2, false, true, {2, 5}, false, 13));
  problems.push_back(make(2, 3, 3, 1, true, true, 3, 2, true, true, {3, 1}, true, 14));
  problems.push_back(make(2, 3, 3, 2, false, true, 3, 3, false, false, {1, 3, 2}, true, 15));
  // Wide enough that backward's two threads each take a panel of units.
  problems.push_back(make(6, 26, 1, 2, true, true, 3, 2, false, true, {2, 3}, false, 16));
  problems.push_back(make(6, 26, 1, 1, false, true, 3, 2, true, true, {3, 1}, false, 17));
  for (Problem& pb : problems) run_problem(pb, pool);
  return check::finish("model_gradients");
}
