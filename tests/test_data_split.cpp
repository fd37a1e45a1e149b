// The seeded split (data/split.hpp) and its random numbers (data/rng.hpp):
// sklearn's sizes, a partition of the rows, and the same rows on every platform.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include <galvani/data/rng.hpp>
#include <galvani/data/split.hpp>

using namespace galvani;

TEST_CASE("SplitMix64 gives the reference sequence", "[data][split]") {
  // The first outputs for seed 1234567 of Vigna's splitmix64.c.
  SplitMix64 r(1234567);
  CHECK(r.next() == 6457827717110365317ull);
  CHECK(r.next() == 3203168211198807973ull);
  CHECK(r.next() == 9817491932198370423ull);
  CHECK(r.next() == 4593380528125082431ull);
  CHECK(r.next() == 16408922859458223821ull);
}

TEST_CASE("below() stays below its bound and hits every value", "[data][split]") {
  SplitMix64 r(1);
  std::vector<int> seen(7, 0);
  for (int i = 0; i < 7000; ++i) {
    uint64_t v = r.below(7);
    REQUIRE(v < 7);
    ++seen[v];
  }
  for (int c : seen) CHECK((c > 800 && c < 1200));  // about 1000 each
}

TEST_CASE("train_test_split has sklearn's sizes and partitions the rows", "[data][split]") {
  for (int64_t n : {2, 5, 10, 11, 99, 463, 480, 481}) {
    INFO("n = " << n);
    SplitIndices s = train_test_split_indices(n, 0.2, 42);
    const auto n_test = int64_t(std::ceil(0.2 * double(n)));  // sklearn: test = ceil(test_size * n)
    CHECK(int64_t(s.test.size()) == n_test);
    CHECK(int64_t(s.train.size()) == n - n_test);
    std::vector<int64_t> all = s.train;
    all.insert(all.end(), s.test.begin(), s.test.end());
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < n; ++i) REQUIRE(all[size_t(i)] == i);
  }
  CHECK_THROWS_WITH(train_test_split_indices(1, 0.2, 42), Catch::Contains("leave the train or the test part empty"));
  CHECK_THROWS_WITH(train_test_split_indices(10, 1.5, 42), Catch::Contains("test_size must be a fraction"));
}

TEST_CASE("the split is a pure function of the seed, the same on every platform", "[data][split]") {
  SplitIndices a = train_test_split_indices(10, 0.2, 42), b = train_test_split_indices(10, 0.2, 42);
  CHECK(a.train == b.train);
  CHECK(a.test == b.test);
  // Golden values: galvani's own shuffle, no std:: distribution involved, so
  // these hold for libstdc++, libc++ and MSVC alike (checked against a
  // Python transcription of rng.hpp).
  CHECK(permutation(10, 42) == std::vector<int64_t>{0, 9, 5, 8, 6, 4, 7, 2, 1, 3});
  CHECK(a.test == std::vector<int64_t>{0, 9});
  SplitIndices c = train_test_split_indices(10, 0.2, 43);
  CHECK((c.test != a.test || c.train != a.train));
}

TEST_CASE("train_test_split of a Table takes the rows by index", "[data][split]") {
  std::vector<std::string> v;
  for (int i = 0; i < 20; ++i) v.push_back("row " + std::to_string(i));
  Table t = Table::from_column("text", v);
  TableSplit s = train_test_split(t, 0.2, 7);
  CHECK(s.train.rows() == 16);
  CHECK(s.test.rows() == 4);
  SplitIndices idx = train_test_split_indices(20, 0.2, 7);
  for (size_t i = 0; i < idx.test.size(); ++i) CHECK(*s.test.column("text")[i] == v[size_t(idx.test[i])]);
  std::set<std::string> all;
  for (const auto& c : s.train.column("text")) all.insert(*c);
  for (const auto& c : s.test.column("text")) all.insert(*c);
  CHECK(all.size() == 20);
}
