#include "persona/server/metrics.h"

#include <fmt/format.h>

namespace persona::server {

size_t Metrics::add_route(const std::string& method, const std::string& path) {
  auto r = std::make_unique<Route>();
  r->method = method;
  r->path = path;
  routes_.push_back(std::move(r));
  return routes_.size() - 1;
}

void Metrics::observe(size_t route, int status, double seconds) {
  Route& r = *routes_.at(route);
  r.status[static_cast<size_t>(status >= 100 && status < 600 ? status : 599)].fetch_add(1, std::memory_order_relaxed);
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  r.buckets[b].fetch_add(1, std::memory_order_relaxed);
  r.sum_microseconds.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::add_counter(const std::string& name, const std::string& labels, double by) {
  std::lock_guard lock(mutex_);
  counters_[{name, labels}] += by;
}

void Metrics::set_gauge(const std::string& name, const std::string& labels, double value) {
  std::lock_guard lock(mutex_);
  gauges_[{name, labels}] = value;
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP persona_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE persona_http_requests_total counter\n";
  for (const auto& r : routes_)
    for (size_t s = 0; s < r->status.size(); ++s)
      if (const auto n = r->status[s].load(std::memory_order_relaxed))
        out += fmt::format("persona_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", r->method, r->path, s, n);
  out += "# HELP persona_http_request_duration_seconds Time from request to response, by route.\n";
  out += "# TYPE persona_http_request_duration_seconds histogram\n";
  for (const auto& r : routes_) {
    uint64_t cumulative = 0;
    const std::string labels = fmt::format("method=\"{}\",route=\"{}\"", r->method, r->path);
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += r->buckets[b].load(std::memory_order_relaxed);
      const std::string le = b < kBuckets.size() ? fmt::format("{}", kBuckets[b]) : "+Inf";
      out += fmt::format("persona_http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels, le, cumulative);
    }
    out += fmt::format("persona_http_request_duration_seconds_sum{{{}}} {}\n", labels,
                       static_cast<double>(r->sum_microseconds.load(std::memory_order_relaxed)) / 1e6);
    out += fmt::format("persona_http_request_duration_seconds_count{{{}}} {}\n", labels, cumulative);
  }
  std::lock_guard lock(mutex_);
  std::string last;
  for (const auto* table : {&counters_, &gauges_}) {
    for (const auto& [key, value] : *table) {
      if (key.first != last) {
        out += fmt::format("# TYPE {} {}\n", key.first, table == &counters_ ? "counter" : "gauge");
        last = key.first;
      }
      out += key.second.empty() ? fmt::format("{} {}\n", key.first, value)
                                : fmt::format("{}{{{}}} {}\n", key.first, key.second, value);
    }
  }
  return out;
}

}  // namespace persona::server
