// Any bytes through the privacy stage's parsers: PII finding and redaction (findings in order,
// inside the text, never overlapping; redaction leaves no finding behind), a sealed field's text
// form (base64, key id, AEAD: anything but a real seal is a CryptoError, never a crash or
// garbage), the assistant-facing role names, and the parameters of a DP query (what the check
// lets through is answered).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "persona/privacy/access.h"
#include "persona/privacy/crypto.h"
#include "persona/privacy/dp.h"
#include "persona/privacy/pii.h"

namespace {
const persona::privacy::KeyRing& ring() {
  static const auto* k = [] {
    setenv("PERSONA_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", 1);
    return new persona::privacy::KeyRing(*persona::privacy::KeyRing::from_environment());
  }();
  return *k;
}
// The first 44 bytes as a DP query's parameters (statistic, epsilon, upper, resolution, q, bins,
// max_per_user): whatever check_dp_parameters accepts, the mechanism answers without an error.
// (The server charges the budget between the two: a query that passed must never fail after.)
void check_dp_parameters_decide(const uint8_t* data, size_t size) {
  if (size < 45) return;
  static const char* statistics[] = {"count", "sum", "mean", "quantile", "histogram", "median"};
  double d[4];
  int32_t n[2];
  std::memcpy(d, data + 1, sizeof d);
  std::memcpy(n, data + 1 + sizeof d, sizeof n);
  const std::string statistic = statistics[data[0] % 6];
  try {
    persona::privacy::check_dp_parameters(statistic, d[0], d[1], d[2], d[3], n[0], n[1]);
  } catch (const std::invalid_argument&) {
    return;
  }
  auto rng = persona::privacy::seeded_random(7);
  const std::vector<double> spend = {0, 1.5, 1e300, -3, std::nan("")};
  const std::vector<std::vector<int>> buckets = {{0}, {1, 0}, {}};
  if (statistic == "count") persona::privacy::dp_count(3, d[0], *rng);
  else if (statistic == "sum") persona::privacy::dp_sum(spend, d[1], d[2], d[0], *rng);
  else if (statistic == "mean") persona::privacy::dp_mean(spend, d[1], d[2], d[0], *rng);
  else if (statistic == "quantile") persona::privacy::dp_quantile(spend, d[1], n[0], d[3], d[0], *rng);
  else if (statistic == "histogram") persona::privacy::dp_histogram(buckets, 2, n[1], d[0], *rng);
  else std::abort();  // an unknown statistic passed the check
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto found = persona::privacy::find_pii(input);
  size_t last_end = 0;
  for (const auto& f : found) {
    if (f.begin < last_end || f.end > input.size() || f.begin >= f.end) std::abort();
    last_end = f.end;
  }
  const auto redacted = persona::privacy::redact_pii(input);
  if (!found.empty() && !persona::privacy::find_pii(redacted).empty()) std::abort();
  try {
    persona::privacy::open_field(ring(), input, "row");
    std::abort();  // random bytes never open
  } catch (const persona::privacy::CryptoError&) {
  }
  const auto sealed = persona::privacy::seal_field(ring(), input, "row");
  if (persona::privacy::open_field(ring(), sealed, "row") != input) std::abort();
  persona::privacy::parse_role(input);
  check_dp_parameters_decide(data, size);
  return 0;
}
