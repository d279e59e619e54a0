// Keys, sealed fields and files, pseudonyms and the audit log's chain: round trips, and every way
// they must fail (wrong key, tampering, moving a value to another row, truncation, edits to the
// log), with no key material in any message.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "persona/core/error.h"
#include "persona/privacy/audit.h"
#include "persona/privacy/crypto.h"
#include "support/test_support.h"

namespace persona::privacy {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Keys, KeyFilesAreOwnerOnlyAndNeverOverwritten) {
  test::TempDir dir;
  const auto path = dir.file("k.key");
  const auto ring = KeyRing::create(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(KeyRing::create(path), Error);
  ::chmod(path.c_str(), 0644);
  EXPECT_THROW(KeyRing::load(path), Error);
  ::chmod(path.c_str(), 0600);
  auto loaded = KeyRing::load(path);
  EXPECT_EQ(loaded.active_id(), 1u);
  EXPECT_EQ(loaded.rotate(), 2u);
  EXPECT_EQ(KeyRing::load(path).active_id(), 2u) << "rotation is saved";
  // A bad key in the environment is an error that does not repeat the value.
  setenv("PERSONA_MASTER_KEY", "c2VjcmV0LXZhbHVlLXRoYXQtaXMtdG9vLXNob3J0", 1);
  try {
    KeyRing::from_environment();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("c2VjcmV0"), std::string::npos) << e.what();
  }
  unsetenv("PERSONA_MASTER_KEY");
}

TEST(Crypto, SealedFieldsOpenOnlyOnTheirRowWithTheirKey) {
  test::TempDir dir;
  auto ring = KeyRing::create(dir.file("k.key"));
  const std::string text = "张伟, zhang.wei@example.com, 上海市浦东新区";
  const auto sealed = seal_field(ring, text, "users:U1:email");
  EXPECT_TRUE(is_sealed(sealed));
  EXPECT_EQ(sealed.find("zhang"), std::string::npos);
  EXPECT_NE(seal_field(ring, text, "users:U1:email"), sealed) << "a fresh nonce each time";
  EXPECT_EQ(open_field(ring, sealed, "users:U1:email"), text);
  EXPECT_THROW(open_field(ring, sealed, "users:U2:email"), CryptoError) << "moved to another row";
  std::string tampered = sealed;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_THROW(open_field(ring, tampered, "users:U1:email"), CryptoError);
  EXPECT_THROW(open_field(ring, "pv1.1.short", "users:U1:email"), CryptoError);
  EXPECT_THROW(open_field(ring, "plain text", "users:U1:email"), CryptoError);
  const auto other = KeyRing::create(dir.file("other.key"));
  EXPECT_THROW(open_field(other, sealed, "users:U1:email"), CryptoError) << "another key ring";
  // Rotation: the old value still opens; resealing moves it to the new key.
  ring.rotate();
  EXPECT_EQ(open_field(ring, sealed, "users:U1:email"), text);
  const auto resealed = reseal_field(ring, sealed, "users:U1:email");
  EXPECT_EQ(sealed_key_id(resealed), 2u);
  EXPECT_EQ(open_field(ring, resealed, "users:U1:email"), text);
  EXPECT_EQ(open_field(ring, seal_field(ring, "", "r"), "r"), "");
}

TEST(Crypto, SealedFilesDetectTamperingAndTruncation) {
  test::TempDir dir;
  const auto ring = KeyRing::create(dir.file("k.key"));
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  test::write_file(dir.file("export.csv"), big);
  EXPECT_EQ(seal_file(ring, dir.file("export.csv"), dir.file("export.sealed")), big.size());
  EXPECT_EQ(read(dir.file("export.sealed")).find("abcdefg"), std::string::npos);
  EXPECT_EQ(open_file(ring, dir.file("export.sealed"), dir.file("back.csv")), big.size());
  EXPECT_EQ(read(dir.file("back.csv")), big);
  const auto sealed = read(dir.file("export.sealed"));
  test::write_file(dir.file("cut.sealed"), sealed.substr(0, sealed.size() - 1000));
  EXPECT_THROW(open_file(ring, dir.file("cut.sealed"), dir.file("cut.csv")), CryptoError);
  EXPECT_FALSE(std::ifstream(dir.file("cut.csv")).good()) << "nothing half-written";
  test::write_file(dir.file("long.sealed"), sealed + "more");
  EXPECT_THROW(open_file(ring, dir.file("long.sealed"), dir.file("long.csv")), CryptoError);
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 1;
  test::write_file(dir.file("flip.sealed"), flipped);
  EXPECT_THROW(open_file(ring, dir.file("flip.sealed"), dir.file("flip.csv")), CryptoError);
  test::write_file(dir.file("empty.csv"), "");
  seal_file(ring, dir.file("empty.csv"), dir.file("empty.sealed"));
  EXPECT_EQ(open_file(ring, dir.file("empty.sealed"), dir.file("empty.back")), 0u);
}

TEST(Crypto, PseudonymsAreStableAndKeyed) {
  test::TempDir dir;
  const auto a = KeyRing::create(dir.file("a.key")), b = KeyRing::create(dir.file("b.key"));
  const auto p = pseudonym(a, "U000042");
  EXPECT_EQ(p.size(), 28u);
  EXPECT_EQ(p.rfind("p_", 0), 0u);
  EXPECT_EQ(pseudonym(a, "U000042"), p);
  EXPECT_NE(pseudonym(a, "U000043"), p);
  EXPECT_NE(pseudonym(b, "U000042"), p);
  auto rotated = KeyRing::load(dir.file("a.key"));
  rotated.rotate();
  EXPECT_EQ(pseudonym(rotated, "U000042"), p) << "rotation keeps pseudonyms";
}

TEST(Audit, TheChainCatchesEditsDeletionsInsertionsAndCuts) {
  test::TempDir dir;
  const auto ring = KeyRing::create(dir.file("k.key"));
  const auto path = dir.file("audit.jsonl");
  AuditLog log(path, ring);
  for (int i = 0; i < 5; ++i) log.append("tester", "act", {{"i", i}});
  EXPECT_TRUE(log.verify().intact);
  EXPECT_EQ(log.verify().entries, 5);
  const auto original = read(path);
  std::vector<std::string> lines;
  {
    std::istringstream in(original);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  auto with = [&](const std::vector<std::string>& ls) {
    std::string s;
    for (const auto& l : ls) s += l + "\n";
    test::write_file(path, s);
    return AuditLog(path, ring).verify();
  };
  auto edited = lines;
  edited[2].replace(edited[2].find("\"i\":2"), 5, "\"i\":7");
  auto v = with(edited);
  EXPECT_FALSE(v.intact);
  EXPECT_EQ(v.first_bad_line, 3);
  auto removed = lines;
  removed.erase(removed.begin() + 1);
  EXPECT_FALSE(with(removed).intact);
  auto inserted = lines;
  inserted.insert(inserted.begin() + 2, lines[2]);
  EXPECT_FALSE(with(inserted).intact);
  auto cut = lines;
  cut.pop_back();
  v = with(cut);
  EXPECT_FALSE(v.intact) << "the head file remembers the last entry";
  EXPECT_NE(v.problem.find("cut off"), std::string::npos) << v.problem;
  with(lines);
  EXPECT_TRUE(AuditLog(path, ring).verify().intact);
  const auto stranger = KeyRing::create(dir.file("s.key"));
  EXPECT_FALSE(AuditLog(path, stranger).verify().intact) << "without the key the chain cannot be checked or rebuilt";
}

}  // namespace
}  // namespace persona::privacy
