#pragma once
// Prometheus metrics of the server, rendered in the text exposition format: requests and their
// latency per route (a histogram), records ingested per entity, and gauges the server sets (model
// versions, cache size). Routes are registered before serving, so the hot path only touches
// atomics of its own route.
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace persona::server {

class Metrics {
 public:
  // Upper bounds of the latency buckets, in seconds.
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,     2.5};
  // Registers a route ("GET /v1/users/{id}/recommendations"); returns its index for observe().
  size_t add_route(const std::string& method, const std::string& path);
  void observe(size_t route, int status, double seconds);
  void add_counter(const std::string& name, const std::string& labels, double by = 1);
  void set_gauge(const std::string& name, const std::string& labels, double value);
  std::string render() const;

 private:
  struct Route {
    std::string method, path;
    std::array<std::atomic<uint64_t>, 600> status{};  // by HTTP status code
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};
    std::atomic<uint64_t> sum_microseconds{0};
  };
  std::vector<std::unique_ptr<Route>> routes_;
  mutable std::mutex mutex_;  // counters and gauges (not per request)
  std::map<std::pair<std::string, std::string>, double> counters_, gauges_;
};

}  // namespace persona::server
