#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include "support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <random>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace persona::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "persona-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void write_gzip(const std::string& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  if (!content.empty()) gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
  gzclose(f);
}

void write_truncated_gzip(const std::string& path, int rows, double keep_fraction) {
  std::string data = "a,b\n";
  for (int i = 0; i < rows; ++i) data += std::to_string(i * 7919 % 100003) + ",row " + std::to_string(i) + "\n";
  write_gzip(path, data);
  const std::string bytes = read_file(path);
  write_file(path, bytes.substr(0, static_cast<size_t>(bytes.size() * keep_fraction)));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

namespace {

// Runs `binary` with `args`, its output captured, killed after timeout_s.
RunResult run_program(const std::string& binary, const std::vector<std::string>& args, int timeout_s,
                      const std::vector<std::string>& env, const std::string& stdin_path) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own group: a timeout kills what it started too (a shell's pipeline)
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    const int devnull = open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    dup2(devnull, 0);
    close(out_pipe[0]);
    close(err_pipe[0]);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    std::string program = binary;
    argv.push_back(program.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult result;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

RunResult run_persona(const std::vector<std::string>& args, int timeout_s, const std::vector<std::string>& env,
                      const std::string& stdin_path) {
  return run_program(PERSONA_BINARY, args, timeout_s, env, stdin_path);
}

RunResult run_shell(const std::string& script, int timeout_s, const std::vector<std::string>& env) {
  std::vector<std::string> all = env;
  all.push_back(std::string("PERSONA=") + PERSONA_BINARY);
  return run_program("/bin/bash", {"-c", script}, timeout_s, all, "");
}

namespace {

template <size_t N>
const char* pick(const char* const (&options)[N], std::mt19937& rng) {
  return options[std::uniform_int_distribution<size_t>(0, N - 1)(rng)];
}

}  // namespace

std::vector<LabelledText> synthetic_intents(int per_class, unsigned seed) {
  static const char* const track[] = {"where is my order", "when will my parcel arrive", "track my package please",
                                      "我的订单到哪里了", "快递什么时候到", "查一下物流信息"};
  static const char* const refund[] = {"i want my money back", "please refund this purchase", "how do i get a refund",
                                       "我要退款", "怎么申请退货退款", "请把钱退给我"};
  static const char* const complaint[] = {"the product arrived broken", "terrible service very angry",
                                          "this is the worst shop", "东西坏了很生气", "服务太差了", "质量太差要投诉"};
  static const char* const filler[] = {"hi", "hello", "thanks", "today", "您好", "谢谢", "麻烦", "急", "ok", ""};
  std::mt19937 rng(seed);
  std::vector<LabelledText> out;
  for (int i = 0; i < per_class; ++i) {
    out.push_back({"track_order", std::string(pick(filler, rng)) + " " + pick(track, rng) + " " + pick(filler, rng)});
    out.push_back({"refund", std::string(pick(filler, rng)) + " " + pick(refund, rng) + " " + pick(filler, rng)});
    out.push_back({"complaint", std::string(pick(filler, rng)) + " " + pick(complaint, rng) + " " + pick(filler, rng)});
  }
  return out;
}

std::string synthetic_reviews_csv(int per_class, unsigned seed) {
  static const char* const good[] = {"味道很好，送餐很快", "非常好吃，下次还点", "分量足，服务好", "great food and fast delivery",
                                     "really tasty, will order again", "excellent service"};
  static const char* const bad[] = {"太难吃了，送得很慢", "等了两个小时，饭都凉了", "味道差，不会再点", "cold food and very slow",
                                    "awful taste, never again", "terrible service"};
  static const char* const filler[] = {"", "哈哈", "总之", "overall", "honestly", "外卖"};
  std::mt19937 rng(seed);
  std::string csv = "label,review\n";
  for (int i = 0; i < per_class; ++i) {
    csv += std::string("1,\"") + pick(filler, rng) + pick(good, rng) + "\"\n";
    csv += std::string("0,\"") + pick(filler, rng) + pick(bad, rng) + "\"\n";
  }
  return csv;
}

nlohmann::json json_of(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  close(s);
  return ntohs(a.sin_port);
}

}  // namespace persona::test
