// The Model: a configuration's weights packed once for every product forward and backward run
// (the gate-column order, the packs of each form, the folded biases), and its accessors.
#include <array>
#include <cstring>
#include <string>

#include "gru.h"
#include "model_impl.h"
#include "schedule.h"

namespace fastgru {

namespace {

// One packed copy of a direction's weights: pack_b(k, n) of `src` (W_ih, W_hh, or W_hh's n rows).
// Untransposed, packed column c is source row cmap[c] and k runs along it (the forward's x·Wᵀ);
// transposed, k runs over source rows kmap[k] and n along a row (the backward's dG·W). The maps
// are gate_row for gate columns and units for units.
struct PackSpec {
  enum Slot { kWih, kWihT, kWhh, kWhhT, kWhn, kWhrzT, kWhnT } dst;  // which of PackedDirection's packs
  int k, n;
  enum Source { kIh, kHh, kHn } src;
  bool transposed;
  enum Map { kNone, kGateRows, kUnits } kmap, cmap;
};

// Every pack of a direction, in the order the constructor makes them and arena_floats sizes them.
std::vector<PackSpec> direction_packs(bool reset_after, int I, int H, int Hp, int Hn) {
  using P = PackSpec;
  std::vector<PackSpec> packs{{P::kWih, I, 3 * Hp, P::kIh, false, P::kNone, P::kGateRows},
                              {P::kWihT, 3 * Hp, I, P::kIh, true, P::kGateRows, P::kNone}};
  if (reset_after) {
    packs.push_back({P::kWhh, H, 3 * Hp, P::kHh, false, P::kNone, P::kGateRows});
    packs.push_back({P::kWhhT, 3 * Hp, Hn, P::kHh, true, P::kGateRows, P::kUnits});
  } else {
    packs.push_back({P::kWhh, H, 2 * Hp, P::kHh, false, P::kNone, P::kGateRows});
    packs.push_back({P::kWhn, H, Hn, P::kHn, false, P::kNone, P::kUnits});
    packs.push_back({P::kWhrzT, 2 * Hp, Hn, P::kHh, true, P::kGateRows, P::kUnits});
    packs.push_back({P::kWhnT, Hp, Hn, P::kHn, true, P::kUnits, P::kUnits});
  }
  return packs;
}

}  // namespace

Model::Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels)
    : Model(config, weights, kernels, nullptr) {}

int64_t Model::arena_floats(const GruConfig& c, const KernelTable& kt) {
  check_config(c);
  const int H = c.hidden_size, D = c.num_directions;
  const int Hp = int(round_up(H, kGateBlock)), Hn = int(kt.padded_width(Hp));
  int64_t total = 0;
  auto add = [&](int64_t n) { total += Arena::floats_for(n); };
  for (int index = 0; index < c.num_layers * D; index++) {
    const int I = index < D ? c.input_size : D * H;
    for (const PackSpec& p : direction_packs(c.reset_after, I, H, Hp, Hn)) add(packed_floats(kt, p.k, p.n));
    add(3 * Hp);  // bias_x and bias_hn, after the packs as the constructor takes them
    add(Hp);
  }
  return total;
}

Model::Model(const GruConfig& config, const std::vector<DirectionWeights>& weights, const KernelTable& kernels,
             Arena* arena)
    : config_(config), kt_(kernels) {
  check_config(config);
  const int H = config.hidden_size, D = config.num_directions;
  if (int64_t(weights.size()) != int64_t(config.num_layers) * D)
    throw Error("ERR_STATE_DICT", "weights: expected " + std::to_string(config.num_layers * D) +
                                      " layer-directions, got " + std::to_string(weights.size()));
  hp_ = int(round_up(H, kGateBlock));
  // Products whose columns are units run in panels of 3W units; they cover the padded width, so
  // every chunk of units has its panel and the padding lanes get zeros, never stale memory.
  hn_ = int(kt_.padded_width(hp_));
  const int Hp = hp_, Hn = hn_;
  std::vector<int> units(static_cast<size_t>(Hn));  // column j of a units product: unit j, or padding
  for (int j = 0; j < Hn; j++) units[size_t(j)] = j < H ? j : -1;
  for (size_t index = 0; index < weights.size(); index++) {
    const DirectionWeights& w = weights[index];
    if (!w.w_ih || !w.w_hh || (config.bias && (!w.b_ih || !w.b_hh)))
      throw Error("ERR_STATE_DICT", "weights[" + std::to_string(index) + "]: a parameter is missing");
    auto d = std::make_unique<PackedDirection>();
    const int I = index < size_t(D) ? config.input_size : D * H;
    d->input = I;
    d->gate_row.assign(size_t(3 * Hp), -1);
    for (int c = 0; c < 3 * Hp; c++) {
      int g, j;
      const int G = kGateBlock;
      if (config.reset_after) {
        g = (c % (3 * G)) / G;
        j = c / (3 * G) * G + c % G;
      } else if (c < 2 * Hp) {
        g = (c % (2 * G)) / G;
        j = c / (2 * G) * G + c % G;
      } else {
        g = 2;
        j = c - 2 * Hp;
      }
      d->gate_row[c] = j < H ? g * H + j : -1;
    }
    const int* maps[] = {nullptr, d->gate_row.data(), units.data()};  // by PackSpec::Map
    const float* sources[] = {w.w_ih, w.w_hh, w.w_hh + int64_t(2) * H * H};  // by PackSpec::Source
    const std::array<PackedB*, 7> slots = d->packs();
    for (const PackSpec& p : direction_packs(config.reset_after, I, H, Hp, Hn)) {
      const int64_t row = p.src == PackSpec::kIh ? I : H;  // a source row's length
      *slots[p.dst] = pack_b(kt_, p.k, p.n, sources[p.src], p.transposed ? row : 1, p.transposed ? 1 : row,
                             maps[p.kmap], maps[p.cmap], arena);
    }
    const int* rows = d->gate_row.data();
    d->bias_x = make_buffer(3 * Hp, arena);
    d->bias_hn = make_buffer(Hp, arena);
    if (config.bias) {
      for (int c = 0; c < 3 * Hp; c++) {
        const int row = rows[c];
        if (row < 0) continue;
        const bool n_gate = row >= 2 * H;
        d->bias_x[c] = (n_gate && config.reset_after) ? w.b_ih[row] : w.b_ih[row] + w.b_hh[row];
      }
      if (config.reset_after)
        for (int j = 0; j < H; j++) d->bias_hn[j] = w.b_hh[2 * H + j];
    }
    for (const PackedB* p : d->packs()) packed_bytes_ += p->view.floats() * int64_t(sizeof(float));
    dirs_.push_back(std::move(d));
  }
}

Model::~Model() = default;
const GruConfig& Model::config() const { return config_; }
const KernelTable& Model::kernels() const { return kt_; }
int64_t Model::packed_bytes() const { return packed_bytes_; }
int64_t Model::last_work_bytes() const { return work_bytes_.load(std::memory_order_relaxed); }

ModelParts Model::parts() const { return {kt_, config_, dirs_, hp_, hn_}; }

bool Model::same_packing(const Model& o) const {
  const GruConfig &a = config_, &b = o.config_;
  if (&kt_ != &o.kt_ || a.input_size != b.input_size || a.hidden_size != b.hidden_size ||
      a.num_layers != b.num_layers || a.num_directions != b.num_directions || a.reset_after != b.reset_after ||
      a.bias != b.bias || dirs_.size() != o.dirs_.size())
    return false;
  auto same = [](const float* x, const float* y, int64_t n) {
    return n <= 0 || (x && y && std::memcmp(x, y, size_t(n) * sizeof(float)) == 0);
  };
  for (size_t k = 0; k < dirs_.size(); k++) {
    const PackedDirection &d = *dirs_[k], &e = *o.dirs_[k];
    const std::array<const PackedB*, 7> mine = d.packs(), theirs = e.packs();
    for (size_t i = 0; i < mine.size(); i++) {
      const Panels &p = mine[i]->view, &q = theirs[i]->view;
      const int64_t n = p.floats();
      if (n != q.floats() || !same(p.data, q.data, n)) return false;
    }
    if (!same(d.bias_x.get(), e.bias_x.get(), 3 * int64_t(hp_)) || !same(d.bias_hn.get(), e.bias_hn.get(), hp_)) return false;
  }
  return true;
}

}  // namespace fastgru
