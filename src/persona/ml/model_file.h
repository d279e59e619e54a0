#pragma once
// The one model file format of Persona. A file is
//   line 1: "PERSONA-MODEL 1"
//   line 2: a JSON header {"kind", "task", "format_version", "created", "schema", "metrics",
//           "payload_bytes", "payload_xxh3"}
//   then the payload bytes (the kind's own binary layout).
// Loading checks the magic line, the format version, the kind the caller expects, the payload
// length and its XXH3-64 checksum, so a truncated, corrupted or foreign file is a clear error.
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace persona::ml {

constexpr int kModelFormatVersion = 1;

struct ModelHeader {
  std::string kind;  // "text-classifier", "propensity", "tabular-classifier", ...
  std::string task;  // what it was trained for: "sentiment", "intent", "R4", ...
  nlohmann::json schema = nlohmann::json::object();   // features and labels it expects
  nlohmann::json metrics = nlohmann::json::object();  // validation / test figures at training
  std::string created;                                // ISO 8601 UTC
};

struct ModelFile {
  ModelHeader header;
  std::string_view payload;              // valid as long as `storage` (shared by copies) lives
  std::shared_ptr<const void> storage;  // the file mapped read-only, or the bytes parsed
};

// Writes atomically (temporary file, then rename). Throws std::runtime_error naming the path.
void write_model_file(const std::string& path, const ModelHeader& header, std::string_view payload);

// Only the header of a model file (listing models without reading their payloads). Throws like
// read_model_file when the file is not a Persona model.
ModelHeader read_model_header(const std::string& path);

// Every model written is also noted, one JSON line {file, kind, task, created, metrics}, in
// training-history.jsonl beside it: the training history the dashboard shows. Metrics only: never
// data.
std::string training_history_path(const std::string& models_dir);

// Reads and verifies. The file is mapped, not copied: a model of tens of megabytes is read by the
// page cache straight into the loader's arrays. `expected_kind` empty accepts any kind. Throws std::runtime_error with a
// message that names the path and what is wrong.
ModelFile read_model_file(const std::string& path, std::string_view expected_kind = {});

// The same from bytes in memory (tests, and files fetched from elsewhere).
ModelFile parse_model_file(std::string_view bytes, const std::string& name, std::string_view expected_kind = {});

}  // namespace persona::ml
