#pragma once
// Reranking by what the profile stage knows about a user: their segment (how popular each item is
// among the segment's members), their category affinities and their price band. Affinities and
// price band are the profile's definitions computed on the history being scored, so they follow
// live events and never see a test period; the segment comes from the user's stored profile.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/binary_io.h"
#include "persona/recommend/interactions.h"
#include "persona/recommend/recommender.h"

namespace persona::recommend {

// A user's learned segment by external user id (the profile stage's segment ids).
using UserSegments = std::unordered_map<std::string, int32_t>;

// By segment: the share of the segment's users who chose each item in training, scaled so the
// segment's most chosen item has 1.
class SegmentPopularity {
 public:
  SegmentPopularity() = default;
  SegmentPopularity(const Interactions& x, const UserSegments& segments);
  // Scores of every item in `segment`; nullptr for an unknown segment (or -1).
  const std::vector<float>* of(int32_t segment) const;
  size_t segments() const { return by_segment_.size(); }
  void write(ByteWriter& out) const;
  static SegmentPopularity read(ByteReader& in);

 private:
  std::vector<std::vector<float>> by_segment_;
};

// What the catalogue says about items, for the profile features.
struct ItemFacts {
  const std::vector<std::string>& categories;
  const std::vector<double>& prices;  // NaN: unknown
  const SegmentPopularity& segments;
};

// Reranks `ranked` (a base method's best candidates, best first) by
//   base score scaled to 0..1 over the candidates
//   + segment x the item's popularity in the user's segment
//   + affinity x the user's share of history weight in the item's category
//   + price x 1 / (1 + |ln(item price / the user's weighted median price paid)|).
// Unknown features add nothing. Ties keep the base order.
void rerank(const RerankSpec& spec, const ItemFacts& items, const Row& history, int32_t segment, std::vector<Scored>& ranked);

}  // namespace persona::recommend
