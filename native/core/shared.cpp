// The table of shared models: one packed Model per distinct (configuration, kernels, weight values)
// in the process, held weakly so it goes when its last user does.
#include <cstring>
#include <map>
#include <tuple>

#include "gru.h"
#include "kernels/kernels.h"

namespace fastgru {

namespace {

// Two independent 64-bit streams over the bytes (multiply-xorshift mixing, 8 bytes at a time, the
// length folded in): a 128-bit fingerprint of the weight values.
struct Fingerprint {
  uint64_t a = 0x9e3779b97f4a7c15ULL, b = 0xc2b2ae3d27d4eb4fULL;

  static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
  }

  void add(const float* data, int64_t count) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
    const size_t n = size_t(count) * sizeof(float);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      a = (a ^ mix(w)) * 0x100000001b3ULL + 0x632be59bd9b4e019ULL;
      b = (b + mix(w ^ 0x2545f4914f6cdd1dULL)) * 0x9fb21c651e98df25ULL;
    }
    uint64_t tail = 0;
    if (i < n) std::memcpy(&tail, p + i, n - i);
    a = mix(a ^ tail ^ n);
    b = mix(b + tail + (uint64_t(n) << 1));
  }
};

using Key = std::tuple<int, int, int, int, bool, bool, const KernelTable*, uint64_t, uint64_t>;

std::mutex& table_mutex() {
  static std::mutex m;
  return m;
}

std::map<Key, std::weak_ptr<const Model>>& table() {
  static auto* t = new std::map<Key, std::weak_ptr<const Model>>();  // never destroyed: used at exit by finalizers
  return *t;
}

}  // namespace

std::shared_ptr<const Model> shared_model(const GruConfig& config, const std::vector<DirectionWeights>& weights,
                                          const KernelTable& kernels) {
  check_config(config);
  const int64_t H = config.hidden_size, D = config.num_directions;
  if (int64_t(weights.size()) != int64_t(config.num_layers) * D)
    throw Error("ERR_STATE_DICT", "weights: expected " + std::to_string(config.num_layers * D) +
                                      " layer-directions, got " + std::to_string(weights.size()));
  Fingerprint f;
  for (size_t k = 0; k < weights.size(); k++) {
    const DirectionWeights& w = weights[k];
    if (!w.w_ih || !w.w_hh || (config.bias && (!w.b_ih || !w.b_hh)))
      throw Error("ERR_STATE_DICT", "weights[" + std::to_string(k) + "]: a parameter is missing");
    const int64_t I = int64_t(k) < D ? config.input_size : D * H;
    f.add(w.w_ih, 3 * H * I);
    f.add(w.w_hh, 3 * H * H);
    if (config.bias) {
      f.add(w.b_ih, 3 * H);
      f.add(w.b_hh, 3 * H);
    }
  }
  const Key key{config.input_size, config.hidden_size, config.num_layers, config.num_directions, config.reset_after,
                config.bias, &kernels, f.a, f.b};
  std::lock_guard<std::mutex> lock(table_mutex());
  auto& t = table();
  // Drop the entries whose models are gone, so the table does not grow with every model ever shared.
  for (auto it = t.begin(); it != t.end();) it = it->second.expired() ? t.erase(it) : std::next(it);
  if (auto it = t.find(key); it != t.end())
    if (std::shared_ptr<const Model> model = it->second.lock()) return model;
  auto model = std::make_shared<const Model>(config, weights, kernels);
  t[key] = model;
  return model;
}

}  // namespace fastgru
