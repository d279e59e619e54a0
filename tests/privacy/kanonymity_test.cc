// k-anonymity: hierarchies from both file layouts (with the faults real files have), and
// Mondrian releases whose classes are all at least k (counted here, independently), whose values
// generalise the originals, that keep l distinct sensitive values when asked, and that suppress
// only within the budget.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "persona/core/error.h"
#include "persona/privacy/kanonymity.h"
#include "support/test_support.h"

namespace persona::privacy {
namespace {

TEST(Hierarchy, BothLayoutsAndTheirFaults) {
  test::TempDir dir;
  test::write_file(dir.file("paths.txt"), "Divorced;leave;*\r\nSeparated;leave;*\r\nNever-married;*\r\nDivorced;*\r\n");
  std::vector<std::string> warnings;
  auto h = Hierarchy::load(dir.file("paths.txt"), &warnings);
  ASSERT_EQ(warnings.size(), 1u);  // Divorced twice: the first place is kept
  EXPECT_NE(warnings[0].find("Divorced"), std::string::npos);
  EXPECT_EQ(h.name(h.parent(h.find("Divorced"))), "leave");
  EXPECT_EQ(h.leaf_count(), 3);
  EXPECT_EQ(h.name(h.lowest_common_ancestor(h.find("Divorced"), h.find("Separated"))), "leave");
  EXPECT_EQ(h.lowest_common_ancestor(h.find("Divorced"), h.find("Never-married")), h.root());
  const int missing = h.leaf("?");  // a value the file lacks: a leaf under the root
  EXPECT_EQ(h.parent(missing), h.root());
  EXPECT_EQ(h.leaf_count(), 4);

  test::write_file(dir.file("pairs.txt"), "Never-married,NM\nNM,*\nMarried-civ-spouse,Married\nMarried,*\n");
  h = Hierarchy::load(dir.file("pairs.txt"));
  EXPECT_EQ(h.name(h.parent(h.find("Never-married"))), "NM");
  EXPECT_EQ(h.leaves_under(h.find("Married")), 1);
  test::write_file(dir.file("broken.txt"), "a,b\nb,a\n");
  EXPECT_THROW(Hierarchy::load(dir.file("broken.txt")), Error);
  EXPECT_THROW(Hierarchy::load(dir.file("none.txt")), Error);
}

struct Table {
  std::vector<std::vector<std::string>> rows;  // age, marital, country, disease
  std::vector<QuasiIdentifier> qis;
};

Table people(int n, unsigned seed) {
  std::mt19937 rng(seed);
  const char* marital[] = {"Divorced", "Separated", "Never-married", "Married"};
  const char* countries[] = {"US", "US", "US", "UK", "China", "India"};
  const char* diseases[] = {"flu", "cold", "asthma", "none"};
  Table t;
  for (int i = 0; i < n; ++i)
    t.rows.push_back({std::to_string(18 + static_cast<int>(rng() % 60)), marital[rng() % 4], countries[rng() % 6],
                      diseases[rng() % 4]});
  t.rows.push_back({"40", "Married", "Tuvalu", "flu"});  // one rare country
  QuasiIdentifier age{"age", true, {}}, status{"marital", false, {}}, country{"country", false, {}};
  test::TempDir dir;
  test::write_file(dir.file("m.txt"), "Divorced;leave;*\nSeparated;leave;*\nNever-married;*\nMarried;*\n");
  status.hierarchy = Hierarchy::load(dir.file("m.txt"));
  t.qis = {age, status, country};
  return t;
}

std::map<std::vector<std::string>, std::vector<size_t>> classes_of(const KAnonymityResult& r) {
  std::map<std::vector<std::string>, std::vector<size_t>> c;
  for (size_t i = 0; i < r.generalised.size(); ++i)
    if (!r.suppressed[i]) c[r.generalised[i]].push_back(i);
  return c;
}

TEST(KAnonymity, EveryClassHasKRowsAndGeneralisesItsValues) {
  for (int k : {2, 5, 10, 40}) {
    auto t = people(300, 1);
    KAnonymityOptions o;
    o.k = k;
    const auto r = k_anonymize(t.rows, t.qis, {0, 1, 2}, o);
    const auto classes = classes_of(r);
    EXPECT_EQ(r.classes, classes.size());
    size_t smallest = t.rows.size();
    for (const auto& [values, rows] : classes) {
      smallest = std::min(smallest, rows.size());
      for (auto i : rows) {
        // The age lies in its range; each category is the value or one of its ancestors.
        const auto& range = values[0];
        const auto dash = range.find('-');
        const int age = std::stoi(t.rows[i][0]);
        if (dash == std::string::npos) EXPECT_EQ(range, t.rows[i][0]);
        else EXPECT_TRUE(age >= std::stoi(range.substr(0, dash)) && age <= std::stoi(range.substr(dash + 1))) << range;
        for (size_t q = 1; q < 3; ++q) {
          const auto& h = t.qis[q].hierarchy;
          int node = h.find(t.rows[i][q == 1 ? 1 : 2]);
          bool ancestor = false;
          for (; node >= 0; node = h.parent(node)) ancestor |= h.name(node) == values[q];
          EXPECT_TRUE(ancestor) << values[q] << " does not generalise " << t.rows[i][q];
        }
      }
    }
    EXPECT_GE(smallest, static_cast<size_t>(k));
    EXPECT_EQ(r.min_class_size, smallest);
    EXPECT_GE(r.ncp, 0.0);
    EXPECT_LE(r.ncp, 1.0);
  }
}

TEST(KAnonymity, LargerKLosesMoreAndOneRareValueDoesNotBlockTheRest) {
  auto t = people(400, 2);
  KAnonymityOptions o;
  o.k = 2;
  const double small = k_anonymize(t.rows, t.qis, {0, 1, 2}, o).ncp;
  o.k = 50;
  auto t2 = people(400, 2);
  const auto big = k_anonymize(t2.rows, t2.qis, {0, 1, 2}, o);
  EXPECT_LT(small, big.ncp);
  // Tuvalu's single row is generalised to "*", the common countries keep their names.
  std::set<std::string> countries;
  for (const auto& g : big.generalised) countries.insert(g[2]);
  EXPECT_TRUE(countries.count("US")) << "a rare value must not force every class to *";
}

TEST(KAnonymity, LDiversityAndSuppression) {
  auto t = people(300, 3);
  KAnonymityOptions o;
  o.k = 3;
  o.sensitive = 3;
  o.l = 3;
  const auto r = k_anonymize(t.rows, t.qis, {0, 1, 2}, o);
  for (const auto& [values, rows] : classes_of(r)) {
    std::set<std::string> diseases;
    for (auto i : rows) diseases.insert(t.rows[i][3]);
    EXPECT_GE(diseases.size(), 3u);
  }
  EXPECT_GE(r.min_diversity, 3);

  auto t2 = people(300, 3);
  KAnonymityOptions s;
  s.k = 5;
  s.max_suppressed = 1;
  const auto suppressed = k_anonymize(t2.rows, t2.qis, {0, 1, 2}, s);
  EXPECT_EQ(suppressed.suppressed_rows, 1u);
  EXPECT_TRUE(suppressed.suppressed.back()) << "the rarest value (Tuvalu) goes first";
}

TEST(KAnonymity, ImpossibleRequestsAreErrors) {
  auto t = people(3, 4);
  KAnonymityOptions o;
  o.k = 10;
  EXPECT_THROW(k_anonymize(t.rows, t.qis, {0, 1, 2}, o), std::invalid_argument);
  o.k = 2;
  o.sensitive = 3;
  o.l = 9;
  EXPECT_THROW(k_anonymize(t.rows, t.qis, {0, 1, 2}, o), std::invalid_argument);
  // A non-numeric value in a numeric column: generalised with the whole range, never a crash.
  auto bad = people(20, 5);
  bad.rows[0][0] = "forty";
  o = {};
  o.k = 2;
  const auto r = k_anonymize(bad.rows, bad.qis, {0, 1, 2}, o);
  EXPECT_EQ(r.generalised[0][0], "*");
}

}  // namespace
}  // namespace persona::privacy
