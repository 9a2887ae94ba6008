#include "aggregate/fingerprint_filter.h"

#include <algorithm>

namespace kpistream {
namespace {

constexpr size_t kBitsPerKey = 10;
constexpr int kProbes = 6;  // bits a key sets in its block

// splitmix64's finalizer: every bit of the result depends on every bit of
// `x`. Fingerprints are StableHash values, but a filter should not need
// that: consecutive numbers, or keys that differ in a few bits, spread too.
uint64_t Mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The block of a key among `blocks`, from its mixed bits (Lemire's
// multiply-shift range reduction, no division).
size_t BlockOf(uint64_t mixed, size_t blocks) {
  return static_cast<size_t>((static_cast<unsigned __int128>(mixed) * blocks) >>
                             64);
}

// The bits within the block: 9 bits a probe, from a second mix (the block
// took the first's high bits).
uint64_t BitsOf(uint64_t mixed) { return Mix(mixed ^ 0x5bd1e9955bd1e995ull); }

}  // namespace

FingerprintFilter::FingerprintFilter(size_t expected) {
  AddLayer(&layers_, std::max(expected, kMinCapacity));
}

void FingerprintFilter::AddLayer(std::vector<Layer>* layers, size_t capacity) {
  Layer layer;
  layer.capacity = capacity;
  layer.blocks.resize((capacity * kBitsPerKey + 511) / 512);
  layers->push_back(std::move(layer));
}

void FingerprintFilter::Add(uint64_t fingerprint) {
  if (layers_.back().keys >= layers_.back().capacity) {
    AddLayer(&layers_, layers_.back().capacity * 2);
  }
  Layer& layer = layers_.back();
  const uint64_t mixed = Mix(fingerprint);
  Block& block = layer.blocks[BlockOf(mixed, layer.blocks.size())];
  uint64_t bits = BitsOf(mixed);
  for (int i = 0; i < kProbes; ++i, bits >>= 9) {
    block.words[(bits >> 6) & 7] |= uint64_t{1} << (bits & 63);
  }
  ++layer.keys;
  ++keys_;
}

bool FingerprintFilter::Has(const Layer& layer, uint64_t mixed) {
  const Block& block = layer.blocks[BlockOf(mixed, layer.blocks.size())];
  uint64_t bits = BitsOf(mixed);
  for (int i = 0; i < kProbes; ++i, bits >>= 9) {
    if ((block.words[(bits >> 6) & 7] & (uint64_t{1} << (bits & 63))) == 0) {
      return false;
    }
  }
  return true;
}

bool FingerprintFilter::MayContain(uint64_t fingerprint) const {
  const uint64_t mixed = Mix(fingerprint);
  for (const Layer& layer : layers_) {
    if (layer.keys > 0 && Has(layer, mixed)) return true;
  }
  return false;
}

size_t FingerprintFilter::ApproximateBytes() const {
  size_t bytes = sizeof(*this) + layers_.capacity() * sizeof(Layer);
  for (const Layer& layer : layers_) {
    bytes += layer.blocks.capacity() * sizeof(Block);
  }
  return bytes;
}

}  // namespace kpistream
