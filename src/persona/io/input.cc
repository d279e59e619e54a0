#include "persona/io/input.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <xxhash.h>

#include "persona/core/error.h"

namespace persona::io {
namespace {

struct Copy {
  int fd = -1;
  std::string path;  // /proc/self/fd/N: opens the unlinked copy afresh, from its start
  std::string hash;
};

// By the pipe's identity (device and inode), not its name: /dev/fd/63 names another pipe later.
std::mutex copies_mutex;
std::map<std::pair<dev_t, ino_t>, Copy>& copies() {
  static auto* m = new std::map<std::pair<dev_t, ino_t>, Copy>();  // for the life of the process
  return *m;
}

// The stat of `path` ("-": standard input).
bool stat_input(const std::string& path, struct stat& st) {
  return path == "-" ? ::fstat(0, &st) == 0 : ::stat(path.c_str(), &st) == 0;
}

uint64_t max_pipe_bytes() {
  const char* v = std::getenv("PERSONA_MAX_PIPE_BYTES");
  if (v && *v) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (end && *end == '\0' && n > 0) return n;
  }
  return 8ull << 30;
}

std::string hex_digest(XXH3_state_t* state) {
  const auto h = XXH3_128bits_digest(state);
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

// An unlinked temporary file: nothing is left behind however the process ends.
int temporary_file(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  const std::string tmp = dir && *dir ? dir : "/tmp";
  int fd = ::open(tmp.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string pattern = tmp + "/persona-input-XXXXXX";
  fd = ::mkstemp(pattern.data());
  if (fd < 0) throw Error(fmt::format("cannot make a temporary copy of the input: {}", std::strerror(errno)), {name},
                          "set TMPDIR to a writable directory");
  ::unlink(pattern.c_str());
  return fd;
}

Copy copy_stream(int in, const std::string& name) {
  Copy c;
  c.fd = temporary_file(name);
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  const uint64_t limit = max_pipe_bytes();
  std::vector<char> buffer(1 << 20);
  uint64_t total = 0;
  bool announced = false;
  try {
    for (;;) {
      // A FIFO whose writer has not come yet: said once on a terminal, then waited for (as cat does).
      pollfd ready{in, POLLIN, 0};
      const int polled = ::poll(&ready, 1, announced ? -1 : 3000);
      if (polled == 0) {
        if (::isatty(STDERR_FILENO)) std::fprintf(stderr, "persona: waiting for data on %s\n", name.c_str());
        announced = true;
        continue;
      }
      const ssize_t n = ::read(in, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) throw Error(fmt::format("cannot read: {}", std::strerror(errno)), {name});
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
      if (total > limit)
        throw Error(fmt::format("the input is longer than {} bytes (PERSONA_MAX_PIPE_BYTES)", limit), {name},
                    "a pipe is copied before it is read: write it to a file, or raise PERSONA_MAX_PIPE_BYTES");
      XXH3_128bits_update(state, buffer.data(), static_cast<size_t>(n));
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(c.fd, buffer.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
          throw Error(fmt::format("cannot copy the input to a temporary file: {}", std::strerror(errno)), {name},
                      errno == ENOSPC ? "the disk of TMPDIR is full" : "");
        done += w;
      }
    }
  } catch (...) {
    XXH3_freeState(state);
    ::close(c.fd);
    throw;
  }
  c.hash = hex_digest(state);
  XXH3_freeState(state);
  c.path = fmt::format("/proc/self/fd/{}", c.fd);
  return c;
}

}  // namespace

std::string readable_path(const std::string& path) {
  const bool stdin_named = path == "-" || path == "/dev/stdin";
  struct stat st {};
  if (!stat_input(path, st))
    throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path}, "check the path");
  if (S_ISREG(st.st_mode)) return path == "-" ? "/dev/stdin" : path;
  if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a data file", {path});
  if (stdin_named && ::isatty(0))
    throw Error("standard input is a terminal", {path}, "pipe a file in: cat events.csv | persona ... -");
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    throw Error("is a device, not a data file", {path}, "Persona reads files, pipes and standard input (\"-\")");
  // A pipe, a FIFO or a socket: read once, into a copy.
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  std::lock_guard lock(copies_mutex);
  if (const auto it = copies().find(key); it != copies().end()) return it->second.path;
  int in = 0;
  if (path != "-") {
    // Not blocking in open() (a FIFO would wait there for its writer, silently): the copy polls.
    in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0) throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path});
  }
  Copy c;
  try {
    c = copy_stream(in, path);
  } catch (...) {
    if (in != 0) ::close(in);
    throw;
  }
  if (in != 0) ::close(in);
  return copies().emplace(key, std::move(c)).first->second.path;
}

std::string read_small_input(const std::string& path, const std::string& what, uint64_t max_bytes) {
  const std::string readable = readable_path(path);
  std::FILE* f = std::fopen(readable.c_str(), "rb");
  if (!f) throw Error(fmt::format("cannot read the {}: {}", what, std::strerror(errno)), {path}, "check the path");
  std::string out;
  std::vector<char> buffer(1 << 16);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) {
    out.append(buffer.data(), n);
    if (out.size() > max_bytes) {
      std::fclose(f);
      throw Error(fmt::format("the {} is larger than {} bytes", what, max_bytes), {path});
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw Error(fmt::format("cannot read the {}", what), {path});
  return out;
}

std::string input_content_hash(const std::string& path) {
  const std::string readable = readable_path(path);
  struct stat st {};
  if (stat_input(path, st) && !S_ISREG(st.st_mode)) {
    std::lock_guard lock(copies_mutex);
    if (const auto it = copies().find({st.st_dev, st.st_ino}); it != copies().end()) return it->second.hash;
  }
  std::FILE* f = std::fopen(readable.c_str(), "rb");
  if (!f) throw Error(fmt::format("cannot open: {}", std::strerror(errno)), {path}, "check the path");
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) XXH3_128bits_update(state, buffer.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  const std::string hash = hex_digest(state);
  XXH3_freeState(state);
  if (failed) throw Error("cannot read", {path});
  return hash;
}

}  // namespace persona::io
