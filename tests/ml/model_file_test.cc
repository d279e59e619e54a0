// The model file format: round trip, and clear errors for every way a file can be wrong.
#include <gtest/gtest.h>

#include <fstream>

#include "persona/ml/model_file.h"
#include "support/test_support.h"

namespace persona::ml {
namespace {

std::string error_of(const std::string& path, std::string_view kind = {}) {
  try {
    read_model_file(path, kind);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelFile, RoundTripAndErrors) {
  test::TempDir dir;
  const std::string path = dir.file("m.model");
  ModelHeader h;
  h.kind = "text-classifier";
  h.task = "intent";
  h.schema = {{"labels", {"a", "b"}}};
  const std::string payload("\x00\x01payload\xff", 10);
  write_model_file(path, h, payload);
  const auto f = read_model_file(path, "text-classifier");
  EXPECT_EQ(f.payload, payload);
  EXPECT_EQ(f.header.task, "intent");
  EXPECT_EQ(f.header.schema["labels"][1], "b");
  EXPECT_FALSE(f.header.created.empty());

  EXPECT_NE(error_of(path, "tabular-classifier").find("holds a text-classifier model"), std::string::npos);
  const std::string bytes = test::read_file(path);
  test::write_file(dir.file("cut.model"), bytes.substr(0, bytes.size() - 3));
  EXPECT_NE(error_of(dir.file("cut.model")).find("truncated"), std::string::npos);
  std::string flipped = bytes;
  flipped.back() ^= 0x40;
  test::write_file(dir.file("flip.model"), flipped);
  EXPECT_NE(error_of(dir.file("flip.model")).find("checksum"), std::string::npos);
  test::write_file(dir.file("csv.model"), "a,b\n1,2\n");
  EXPECT_NE(error_of(dir.file("csv.model")).find("not a Persona model file"), std::string::npos);
  test::write_file(dir.file("v9.model"), "PERSONA-MODEL 9\n{}\n");
  EXPECT_NE(error_of(dir.file("v9.model")).find("format version 9"), std::string::npos);
  test::write_file(dir.file("head.model"), "PERSONA-MODEL 1\n{not json\n");
  EXPECT_NE(error_of(dir.file("head.model")).find("corrupted header"), std::string::npos);
  EXPECT_NE(error_of(dir.file("absent.model")).find("cannot be opened"), std::string::npos);
  test::write_file(dir.file("empty.model"), "");
  EXPECT_NE(error_of(dir.file("empty.model")), "");
}

}  // namespace
}  // namespace persona::ml
