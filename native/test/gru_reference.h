// A naive GRU in double precision, written from the equations (gru.h's comment and PyTorch's
// packed-sequence rules), sharing nothing with the engine: the oracle of the model tests. Also the
// helpers that build a Model from random parameters and run it.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "gru.h"
#include "thread_pool.h"

namespace ref_gru {

using fastgru::GruConfig;

// One layer-direction's parameters in PyTorch layouts, index = layer * D + direction.
template <class T>
struct Params {
  std::vector<std::vector<T>> w_ih, w_hh, b_ih, b_hh;
  size_t size() const { return w_ih.size(); }
};

inline int layer_input(const GruConfig& c, int index) {
  return index < c.num_directions ? c.input_size : c.num_directions * c.hidden_size;
}

inline Params<float> random_params(const GruConfig& c, check::Rng& rng, float scale) {
  Params<float> p;
  const int H = c.hidden_size;
  for (int k = 0; k < c.num_layers * c.num_directions; k++) {
    const int I = layer_input(c, k);
    p.w_ih.push_back(rng.floats(int64_t(3) * H * I, -scale, scale));
    p.w_hh.push_back(rng.floats(int64_t(3) * H * H, -scale, scale));
    p.b_ih.push_back(c.bias ? rng.floats(3 * H, -scale, scale) : std::vector<float>());
    p.b_hh.push_back(c.bias ? rng.floats(3 * H, -scale, scale) : std::vector<float>());
  }
  return p;
}

template <class T, class U>
Params<T> convert(const Params<U>& p) {
  Params<T> out;
  auto conv = [](const std::vector<std::vector<U>>& from, std::vector<std::vector<T>>& to) {
    for (const auto& v : from) to.emplace_back(v.begin(), v.end());
  };
  conv(p.w_ih, out.w_ih);
  conv(p.w_hh, out.w_hh);
  conv(p.b_ih, out.b_ih);
  conv(p.b_hh, out.b_hh);
  return out;
}

inline std::vector<fastgru::DirectionWeights> views(const Params<float>& p) {
  std::vector<fastgru::DirectionWeights> w(p.size());
  for (size_t k = 0; k < p.size(); k++) {
    w[k].w_ih = p.w_ih[k].data();
    w[k].w_hh = p.w_hh[k].data();
    w[k].b_ih = p.b_ih[k].empty() ? nullptr : p.b_ih[k].data();
    w[k].b_hh = p.b_hh[k].empty() ? nullptr : p.b_hh[k].data();
  }
  return w;
}

// A call's inputs: x in the call's layout, h0 [L·D, B, H] (empty: null), lengths (empty: null),
// and masks (empty, or L - 1 arrays [T, B, D·H] time-first) for training.
struct Call {
  int64_t T = 0, B = 0;
  bool batch_first = false;
  std::vector<float> x, h0;
  std::vector<int32_t> lengths;
  std::vector<std::vector<float>> masks;

  fastgru::SequenceBatch batch() const {
    fastgru::SequenceBatch b;
    b.x = x.empty() ? nullptr : x.data();
    b.steps = T;
    b.batch = B;
    b.batch_first = batch_first;
    b.h0 = h0.empty() ? nullptr : h0.data();
    b.lengths = lengths.empty() ? nullptr : lengths.data();
    return b;
  }
  int32_t length(int64_t b) const { return lengths.empty() ? int32_t(T) : lengths[size_t(b)]; }
};

template <class T>
struct Result {
  std::vector<T> output, hidden;
};

inline double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// The forward pass in double precision (or T = float for a float-evaluated oracle), straight from
// the equations. xs, h0 are given as doubles so that finite differences can perturb them.
template <class P>
Result<double> forward(const GruConfig& c, const Params<P>& p, const Call& call, const std::vector<double>& x,
                       const std::vector<double>* h0) {
  const int H = c.hidden_size, D = c.num_directions, L = c.num_layers;
  const int64_t T = call.T, B = call.B;
  Result<double> r;
  r.hidden.assign(size_t(L * D * B * H), 0.0);
  std::vector<double> input;  // [T, B, I] time-first
  int I = c.input_size;
  input.assign(size_t(T * B * I), 0.0);
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int k = 0; k < I; k++)
        input[size_t((t * B + b) * I + k)] =
            x[size_t((call.batch_first ? b * T + t : t * B + b) * I + k)];
  std::vector<double> out;
  for (int l = 0; l < L; l++) {
    out.assign(size_t(T * B * D * H), 0.0);
    for (int d = 0; d < D; d++) {
      const int idx = l * D + d;
      const auto& wih = p.w_ih[size_t(idx)];
      const auto& whh = p.w_hh[size_t(idx)];
      const bool bias = c.bias;
      for (int64_t b = 0; b < B; b++) {
        std::vector<double> h(static_cast<size_t>(H), 0.0), hn(static_cast<size_t>(H));
        if (h0)
          for (int j = 0; j < H; j++) h[size_t(j)] = (*h0)[size_t((int64_t(idx) * B + b) * H + j)];
        const int32_t len = call.length(b);
        for (int32_t s = 0; s < len; s++) {
          const int64_t t = d == 1 ? len - 1 - s : s;
          const double* xin = &input[size_t((t * B + b) * I)];
          std::vector<double> gi(static_cast<size_t>(3 * H)), gh(static_cast<size_t>(3 * H));
          for (int row = 0; row < 3 * H; row++) {
            double a = bias ? double(p.b_ih[size_t(idx)][size_t(row)]) : 0.0;
            for (int k = 0; k < I; k++) a += double(wih[size_t(row * I + k)]) * xin[k];
            gi[size_t(row)] = a;
            double e = bias ? double(p.b_hh[size_t(idx)][size_t(row)]) : 0.0;
            gh[size_t(row)] = e;
          }
          std::vector<double> r_(static_cast<size_t>(H)), z_(static_cast<size_t>(H));
          for (int j = 0; j < H; j++) {
            double ar = gi[size_t(j)] + gh[size_t(j)], az = gi[size_t(H + j)] + gh[size_t(H + j)];
            for (int k = 0; k < H; k++) {
              ar += double(whh[size_t(j * H + k)]) * h[size_t(k)];
              az += double(whh[size_t((H + j) * H + k)]) * h[size_t(k)];
            }
            r_[size_t(j)] = sigmoid(ar);
            z_[size_t(j)] = sigmoid(az);
          }
          for (int j = 0; j < H; j++) {
            double inner = gh[size_t(2 * H + j)];  // b_hn
            for (int k = 0; k < H; k++)
              inner += double(whh[size_t((2 * H + j) * H + k)]) *
                       (c.reset_after ? h[size_t(k)] : r_[size_t(k)] * h[size_t(k)]);
            const double n = std::tanh(gi[size_t(2 * H + j)] + (c.reset_after ? r_[size_t(j)] * inner : inner));
            hn[size_t(j)] = z_[size_t(j)] * h[size_t(j)] + (1 - z_[size_t(j)]) * n;
          }
          h = hn;
          for (int j = 0; j < H; j++) out[size_t((t * B + b) * D * H + d * H + j)] = h[size_t(j)];
        }
        for (int j = 0; j < H; j++) r.hidden[size_t((int64_t(idx) * B + b) * H + j)] = h[size_t(j)];
      }
    }
    if (l + 1 < L) {
      if (!call.masks.empty())
        for (size_t e = 0; e < out.size(); e++) out[e] *= double(call.masks[size_t(l)][e]);
      input = out;
      I = D * H;
    }
  }
  // The last layer's output in the call's layout.
  r.output.assign(out.size(), 0.0);
  for (int64_t t = 0; t < T; t++)
    for (int64_t b = 0; b < B; b++)
      for (int k = 0; k < D * H; k++)
        r.output[size_t((call.batch_first ? b * T + t : t * B + b) * D * H + k)] = out[size_t((t * B + b) * D * H + k)];
  return r;
}

template <class P>
Result<double> forward(const GruConfig& c, const Params<P>& p, const Call& call) {
  std::vector<double> x(call.x.begin(), call.x.end()), h0(call.h0.begin(), call.h0.end());
  return forward(c, p, call, x, call.h0.empty() ? nullptr : &h0);
}

// The engine's outputs and gradients for one call.
struct EngineRun {
  std::vector<float> output, hidden;                 // forward (inference)
  std::vector<float> train_output, train_hidden;     // forward_train
  std::vector<float> d_input, d_h0;
  Params<float> grads;
};

inline constexpr float kUnwritten = 1e30f;  // buffers start full of it: every element must be written

inline EngineRun run_engine(const fastgru::Model& model, const Call& call, const std::vector<float>* d_out,
                            const std::vector<float>* d_hid, fastgru::ThreadPool& pool, int threads,
                            bool train = true) {
  const GruConfig& c = model.config();
  const fastgru::SequenceBatch batch = call.batch();
  const fastgru::CallSizes sizes = fastgru::check_batch(c, batch);
  EngineRun e;
  e.output.assign(size_t(sizes.output), kUnwritten);
  e.hidden.assign(size_t(sizes.h), kUnwritten);
  model.forward(batch, e.output.data(), e.hidden.data(), pool, threads);
  if (!train) return e;
  e.train_output.assign(size_t(sizes.output), kUnwritten);
  e.train_hidden.assign(size_t(sizes.h), kUnwritten);
  std::vector<const float*> masks;
  for (const auto& m : call.masks) masks.push_back(m.data());
  std::unique_ptr<fastgru::Tape> tape = model.forward_train(batch, masks.empty() ? nullptr : masks.data(),
                                                            e.train_output.data(), e.train_hidden.data(), pool, threads);
  e.d_input.assign(size_t(sizes.x), kUnwritten);
  e.d_h0.assign(size_t(sizes.h), kUnwritten);
  const int H = c.hidden_size;
  std::vector<fastgru::DirectionGradients> g(size_t(c.num_layers * c.num_directions));
  for (size_t k = 0; k < g.size(); k++) {
    const int I = layer_input(c, int(k));
    e.grads.w_ih.emplace_back(size_t(3 * H * I), kUnwritten);
    e.grads.w_hh.emplace_back(size_t(3 * H * H), kUnwritten);
    e.grads.b_ih.emplace_back(c.bias ? size_t(3 * H) : 0, kUnwritten);
    e.grads.b_hh.emplace_back(c.bias ? size_t(3 * H) : 0, kUnwritten);
    g[k].w_ih = e.grads.w_ih[k].data();
    g[k].w_hh = e.grads.w_hh[k].data();
    g[k].b_ih = c.bias ? e.grads.b_ih[k].data() : nullptr;
    g[k].b_hh = c.bias ? e.grads.b_hh[k].data() : nullptr;
  }
  model.backward(*tape, d_out ? d_out->data() : nullptr, d_hid ? d_hid->data() : nullptr, e.d_input.data(),
                 e.d_h0.data(), g, pool, threads);
  return e;
}

// Every float the engine produced, concatenated (for bit comparisons).
inline std::vector<float> flatten(const EngineRun& e) {
  std::vector<float> all;
  auto add = [&](const std::vector<float>& v) { all.insert(all.end(), v.begin(), v.end()); };
  add(e.output);
  add(e.hidden);
  add(e.train_output);
  add(e.train_hidden);
  add(e.d_input);
  add(e.d_h0);
  for (size_t k = 0; k < e.grads.size(); k++) {
    add(e.grads.w_ih[k]);
    add(e.grads.w_hh[k]);
    add(e.grads.b_ih[k]);
    add(e.grads.b_hh[k]);
  }
  return all;
}

// A random call: lengths unsorted and including 0 (when `ragged`), h0 or none.
inline Call random_call(const GruConfig& c, int64_t T, int64_t B, bool batch_first, bool with_h0, bool ragged,
                        check::Rng& rng) {
  Call call;
  call.T = T;
  call.B = B;
  call.batch_first = batch_first;
  call.x = rng.floats(T * B * c.input_size, -1, 1);
  if (with_h0) call.h0 = rng.floats(int64_t(c.num_layers) * c.num_directions * B * c.hidden_size, -1, 1);
  if (ragged) {
    for (int64_t b = 0; b < B; b++) call.lengths.push_back(int32_t(rng.below(int(T) + 1)));
    if (B > 1) {
      call.lengths[0] = int32_t(T > 1 ? T - 1 : T);  // not sorted: a shorter one first,
      call.lengths[1] = int32_t(T);                  // the longest second,
    }
    if (B > 2) call.lengths[2] = 0;  // and an empty one
  }
  return call;
}

inline std::string describe(const GruConfig& c, const Call& call) {
  std::string lens;
  for (size_t i = 0; i < call.lengths.size() && i < 8; i++) lens += (i ? "," : "") + std::to_string(call.lengths[i]);
  if (call.lengths.size() > 8) lens += ",...";
  return check::format("I=%d H=%d L=%d D=%d %s%s T=%lld B=%lld%s h0=%s lengths=%s%s", c.input_size, c.hidden_size,
                       c.num_layers, c.num_directions, c.reset_after ? "after" : "before", c.bias ? "" : " nobias",
                       (long long)call.T, (long long)call.B, call.batch_first ? " batch-first" : "",
                       call.h0.empty() ? "null" : "given", call.lengths.empty() ? "null" : lens.c_str(),
                       call.masks.empty() ? "" : " masks");
}

}  // namespace ref_gru
