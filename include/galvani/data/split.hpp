// data/split.hpp — the seeded 80/20 train/test split of course step 2.
//
// Same sizes as sklearn's train_test_split(df, test_size=0.2): the test part
// has ceil(0.2 * n) rows and the train part the rest. The rows are chosen by
// galvani's own permutation (rng.hpp), identical on every platform for a given
// seed, but not the rows numpy's RandomState would choose for that seed.
// Like sklearn, the test rows are the first n_test of the permutation and the
// train rows the remaining ones, each in permutation order (shuffled).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include <galvani/core/error.hpp>
#include <galvani/data/rng.hpp>
#include <galvani/data/table.hpp>

namespace galvani {

struct SplitIndices {
  std::vector<int64_t> train;  // row indices into the original table
  std::vector<int64_t> test;
};

// Row indices of a seeded split of n rows; test_size is a fraction in (0, 1).
inline SplitIndices train_test_split_indices(int64_t n, double test_size = 0.2, uint64_t seed = 42) {
  GALVANI_CHECK(test_size > 0.0 && test_size < 1.0, "train_test_split: test_size must be a fraction in (0, 1), got ",
                test_size);
  const auto n_test = static_cast<int64_t>(std::ceil(test_size * double(n)));
  const int64_t n_train = n - n_test;
  GALVANI_CHECK(n_test >= 1 && n_train >= 1, "train_test_split: ", n, " rows with test_size ", test_size,
                " leave the train or the test part empty; use more rows");
  std::vector<int64_t> perm = permutation(n, seed);
  SplitIndices s;
  s.test.assign(perm.begin(), perm.begin() + n_test);
  s.train.assign(perm.begin() + n_test, perm.end());
  return s;
}

struct TableSplit {
  Table train, test;
};

// train_test_split(df, test_size=0.2) for a Table.
inline TableSplit train_test_split(const Table& table, double test_size = 0.2, uint64_t seed = 42) {
  SplitIndices s = train_test_split_indices(table.rows(), test_size, seed);
  return {table.take(s.train), table.take(s.test)};
}

}  // namespace galvani
