// The model cache (model_cache.h): one packed Model per distinct (configuration, kernels, weight
// values) in the process, held weakly so it goes when its last user does.
#include "model_cache.h"

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/kernels.h"
#include "testing.h"

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

// Entries by key; weights of one key that differ (a collision) each have their own entry.
std::multimap<Key, std::weak_ptr<const Model>>& table() {
  static auto* t = new std::multimap<Key, std::weak_ptr<const Model>>();  // never destroyed: used at exit by finalizers
  return *t;
}

// The table's model for `model`'s configuration, kernels and packed bytes: an equal one already
// there, or `model`, entered. The hash only narrows the search; equality is byte for byte.
std::shared_ptr<const Model> intern(std::shared_ptr<const Model> model, uint64_t hash_a, uint64_t hash_b) {
  const GruConfig& c = model->config();
  const Key key{c.input_size, c.hidden_size, c.num_layers, c.num_directions, c.reset_after, c.bias,
                &model->kernels(), hash_a, hash_b};
  std::lock_guard<std::mutex> lock(table_mutex());
  auto& t = table();
  // Drop the entries whose models are gone, so the table does not grow with every model ever shared.
  for (auto it = t.begin(); it != t.end();) it = it->second.expired() ? t.erase(it) : std::next(it);
  const auto [first, last] = t.equal_range(key);
  for (auto it = first; it != last; ++it)
    if (std::shared_ptr<const Model> held = it->second.lock())
      if (held->same_packing(*model)) return held;
  t.emplace(key, model);
  return model;
}

}  // namespace

// The caller's weights are packed first, outside the table's lock (the Model constructor also
// checks them), so one caller's packing never holds up another's lookup; when the table has these
// weights already, this copy only serves to compare and is dropped.
std::shared_ptr<const Model> shared_model(const GruConfig& config, const std::vector<DirectionWeights>& weights,
                                          const KernelTable& kernels) {
  auto model = std::make_shared<const Model>(config, weights, kernels);
  const int64_t H = config.hidden_size, D = config.num_directions;
  Fingerprint f;
  for (size_t k = 0; k < weights.size(); k++) {
    const DirectionWeights& w = weights[k];
    const int64_t I = int64_t(k) < D ? config.input_size : D * H;
    f.add(w.w_ih, 3 * H * I);
    f.add(w.w_hh, 3 * H * H);
    if (config.bias) {
      f.add(w.b_ih, 3 * H);
      f.add(w.b_hh, 3 * H);
    }
  }
  return intern(std::move(model), f.a, f.b);
}

std::shared_ptr<const Model> shared_model_hashed(const GruConfig& config, const std::vector<DirectionWeights>& weights,
                                                 const KernelTable& kernels, uint64_t hash_a, uint64_t hash_b) {
  return intern(std::make_shared<const Model>(config, weights, kernels), hash_a, hash_b);
}

}  // namespace fastgru
