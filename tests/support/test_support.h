#pragma once
// Helpers shared by the tests: scratch directories, writing fixtures (plain and gzip), and
// running the persona binary as a user would.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace persona::test {

// How much slower code runs here: sanitizer builds run the same work several times slower
// (AddressSanitizer about 2x, ThreadSanitizer 5-15x), so wall-time margins (never the budgets
// they check) scale by this.
#if defined(__SANITIZE_THREAD__)
inline constexpr double kSlowdown = 6;
#elif defined(__SANITIZE_ADDRESS__)
inline constexpr double kSlowdown = 3;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr double kSlowdown = 6;
#elif __has_feature(address_sanitizer)
inline constexpr double kSlowdown = 3;
#else
inline constexpr double kSlowdown = 1;
#endif
#else
inline constexpr double kSlowdown = 1;
#endif


// A fresh directory under the system temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);
void write_gzip(const std::string& path, const std::string& content);
// A gzip file of `rows` CSV lines (a,b header) that ends part way through its compressed stream.
void write_truncated_gzip(const std::string& path, int rows, double keep_fraction = 0.5);
std::string read_file(const std::string& path);
std::vector<std::string> lines_of(const std::string& path);  // without the newlines; no empty last line

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

struct RunResult {
  int exit_code = -1;   // the exit status, or 128 + signal when killed
  bool timed_out = false;
  std::string out, err;
};
// Runs the persona binary with args (no shell), stdin from /dev/null (or the file stdin_path),
// killing it after timeout_s. Extra environment entries as NAME=VALUE.
RunResult run_persona(const std::vector<std::string>& args, int timeout_s = 120,
                      const std::vector<std::string>& env = {}, const std::string& stdin_path = "");
// Runs a bash script (pipes, process substitution), with $PERSONA naming the binary; killed with
// everything it started after timeout_s.
RunResult run_shell(const std::string& script, int timeout_s = 120, const std::vector<std::string>& env = {});
// The JSON a successful run printed (a test failure when it exited non-zero).
nlohmann::json json_of(const RunResult& r);

// Labelled texts for the classifier tests: three customer-service intents (track_order, refund,
// complaint) in English and Chinese, made from templates with filler words, seeded.
struct LabelledText {
  std::string label, text;
};
std::vector<LabelledText> synthetic_intents(int per_class, unsigned seed = 1);
// Reviews with sentiment 0/1 in the waimai_zh layout (label,review), half Chinese, half English.
std::string synthetic_reviews_csv(int per_class, unsigned seed = 1);

}  // namespace persona::test
