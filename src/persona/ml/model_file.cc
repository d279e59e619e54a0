#include "persona/ml/model_file.h"

#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "persona/core/json.h"

namespace persona::ml {
namespace {

constexpr std::string_view kMagic = "PERSONA-MODEL ";

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw std::runtime_error(fmt::format("model file {}: {}", name, what));
}

}  // namespace

void write_model_file(const std::string& path, const ModelHeader& header, std::string_view payload) {
  nlohmann::json h;
  h["kind"] = header.kind;
  h["task"] = header.task;
  h["format_version"] = kModelFormatVersion;
  h["created"] = header.created.empty()
                     ? fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(
                                                                std::chrono::system_clock::now())))
                     : header.created;
  h["schema"] = header.schema;
  h["metrics"] = header.metrics;
  h["payload_bytes"] = payload.size();
  h["payload_xxh3"] = hex64(XXH3_64bits(payload.data(), payload.size()));
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(path, "cannot be written (check the directory exists and is writable)");
    out << kMagic << kModelFormatVersion << '\n' << h.dump() << '\n';
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!out.flush()) fail(path, "write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail(path, "cannot be renamed into place: " + ec.message());
  // One write in append mode, so concurrent trainings cannot interleave within a line.
  const nlohmann::json note = {{"file", target.filename().string()}, {"kind", header.kind}, {"task", header.task},
                               {"created", h["created"]}, {"metrics", header.metrics}};
  const std::string line = note.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::ofstream history(training_history_path(target.parent_path().string()), std::ios::app | std::ios::binary);
  history.write(line.data(), static_cast<std::streamsize>(line.size()));  // best effort: the model itself is written
}

std::string training_history_path(const std::string& models_dir) {
  return (std::filesystem::path(models_dir.empty() ? "." : models_dir) / "training-history.jsonl").string();
}

ModelHeader read_model_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot be opened");
  std::string magic, header;
  if (!std::getline(in, magic) || !std::getline(in, header) || magic.rfind(std::string(kMagic), 0) != 0)
    fail(path, "is not a Persona model file (no PERSONA-MODEL header)");
  const auto h = parse_json(header).value_or(nlohmann::json());
  if (!h.is_object()) fail(path, "has a damaged header");
  ModelHeader out;
  out.kind = h.value("kind", "");
  out.task = h.value("task", "");
  out.created = h.value("created", "");
  if (h.contains("schema")) out.schema = h["schema"];
  if (h.contains("metrics")) out.metrics = h["metrics"];
  return out;
}

namespace {

// Checks the header and checksum of a whole file in `bytes`; the payload is where it starts.
ModelFile verified_header(std::string_view bytes, const std::string& name, std::string_view expected_kind,
                          size_t* payload_start) {
  if (bytes.substr(0, kMagic.size()) != kMagic) fail(name, "is not a Persona model file (no PERSONA-MODEL header)");
  const size_t line1 = bytes.find('\n');
  if (line1 == std::string_view::npos) fail(name, "is truncated in its header");
  const std::string version(bytes.substr(kMagic.size(), line1 - kMagic.size()));
  if (version != std::to_string(kModelFormatVersion))
    fail(name, fmt::format("has format version {}, this Persona reads version {}", version, kModelFormatVersion));
  const size_t line2 = bytes.find('\n', line1 + 1);
  if (line2 == std::string_view::npos) fail(name, "is truncated in its header");
  nlohmann::json h = parse_json(bytes.substr(line1 + 1, line2 - line1 - 1)).value_or(nlohmann::json());
  if (!h.is_object()) fail(name, "has a corrupted header");
  ModelFile file;
  try {
    file.header.kind = h.at("kind").get<std::string>();
    file.header.task = h.value("task", "");
    file.header.created = h.value("created", "");
    file.header.schema = h.value("schema", nlohmann::json::object());
    file.header.metrics = h.value("metrics", nlohmann::json::object());
    const auto size = h.at("payload_bytes").get<uint64_t>();
    const auto sum = h.at("payload_xxh3").get<std::string>();
    if (!expected_kind.empty() && file.header.kind != expected_kind)
      fail(name, fmt::format("holds a {} model (task {}), not a {} model", file.header.kind, file.header.task,
                             expected_kind));
    const std::string_view payload = bytes.substr(line2 + 1);
    if (payload.size() != size)
      fail(name, fmt::format("is truncated or padded: payload has {} bytes, header says {}", payload.size(), size));
    if (hex64(XXH3_64bits(payload.data(), payload.size())) != sum)
      fail(name, "is corrupted: payload checksum does not match");
    *payload_start = line2 + 1;
  } catch (const nlohmann::json::exception& e) {
    fail(name, std::string("has a corrupted header: ") + e.what());
  }
  return file;
}

}  // namespace

ModelFile parse_model_file(std::string_view bytes, const std::string& name, std::string_view expected_kind) {
  size_t start = 0;
  ModelFile file = verified_header(bytes, name, expected_kind, &start);
  auto copy = std::make_shared<const std::string>(bytes.substr(start));
  file.payload = *copy;
  file.storage = std::move(copy);
  return file;
}

ModelFile read_model_file(const std::string& path, std::string_view expected_kind) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot be opened (does it exist? train one first)");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "is not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    fail(path, "is empty: not a Persona model file");
  }
  // Populated at once: the checksum reads every page anyway, and one call maps them all.
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) fail(path, "cannot be read");
  std::shared_ptr<const void> mapping(base, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const std::string_view bytes(static_cast<const char*>(base), size);
  size_t start = 0;
  ModelFile file = verified_header(bytes, path, expected_kind, &start);
  file.payload = bytes.substr(start);
  file.storage = std::move(mapping);
  return file;
}

}  // namespace persona::ml
