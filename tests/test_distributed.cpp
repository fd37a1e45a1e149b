// train/distributed.hpp in one process: DistributedSampler's slicing, the single-process group,
// and the errors init_process_group gives. The multi-process checks run under mpiexec
// (tests/distributed/ddp_check.cpp: ddp_equivalence, ddp_rank_hangs, ddp_rank_dies).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <set>

#include <galvani/galvani.hpp>
#include <galvani/train/distributed.hpp>

using namespace galvani;
using Catch::Matchers::Contains;

TEST_CASE("distributed_indices: DistributedSampler's padding and slicing", "[distributed]") {
  // torch.utils.data.DistributedSampler(shuffle=True, drop_last=False): indices += indices[:pad]
  // (repeated when pad > n), then rank r takes indices[r:total:W].
  for (int64_t n : {1, 2, 5, 10, 11}) {
    for (int world : {1, 2, 3, 4, 8}) {
      std::vector<int64_t> order = permutation(n, 42 + 3);
      const int64_t per_rank = (n + world - 1) / world, total = per_rank * world;
      std::vector<int64_t> padded = order;
      while (int64_t(padded.size()) < total) padded.push_back(order[size_t(int64_t(padded.size()) - n) % size_t(n)]);
      std::multiset<int64_t> seen;
      for (int rank = 0; rank < world; ++rank) {
        const std::vector<int64_t> mine = distributed::distributed_indices(n, 42, 3, rank, world);
        REQUIRE(int64_t(mine.size()) == per_rank);
        for (int64_t i = 0; i < per_rank; ++i) CHECK(mine[size_t(i)] == padded[size_t(rank + i * world)]);
        seen.insert(mine.begin(), mine.end());
      }
      for (int64_t i = 0; i < n; ++i) CHECK(seen.count(i) >= 1);  // every row, some twice when padded
    }
  }
  // One rank: exactly the single-process order (the Trainer's order before data parallelism).
  CHECK(distributed::distributed_indices(40, 42, 1, 0, 1) == permutation(40, 43));
  // Rank r's batch k of b rows is rows r, r+W, … of the W·b rows one process takes for batch k.
  const std::vector<int64_t> one = permutation(16, 7);
  const auto r0 = distributed::distributed_indices(16, 7, 0, 0, 2), r1 = distributed::distributed_indices(16, 7, 0, 1, 2);
  for (size_t i = 0; i < 8; ++i) {
    CHECK(r0[i] == one[2 * i]);
    CHECK(r1[i] == one[2 * i + 1]);
  }
  CHECK_THROWS_WITH(distributed::distributed_indices(4, 0, 0, 2, 2), Contains("rank 2 of 2"));
  CHECK_THROWS_WITH(distributed::distributed_indices(0, 0, 0, 0, 1), Contains("n 0"));
}

TEST_CASE("the single-process group: collectives are identities, no gradient travels", "[distributed]") {
  const distributed::ProcessGroup g = distributed::ProcessGroup::single();
  CHECK(g.rank() == 0);
  CHECK(g.world_size() == 1);
  CHECK(g.is_main_process());
  CHECK_FALSE(g.distributed());
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  g.all_reduce(t, distributed::ReduceOp::avg);
  g.broadcast(t, 0);
  g.barrier();
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3});
  CHECK(g.all_reduce(2.5) == 2.5);
  Tensor i8 = Tensor::zeros({2}, DType::i32);
  CHECK_THROWS_WITH(g.all_reduce(i8), Contains("dtype i32"));

  Tensor p = Tensor::from_vector(std::vector<float>{1, 2}, {2});
  p.set_grad(Tensor::from_vector(std::vector<float>{0.5f, -1}, {2}));
  distributed::GradientReducer reducer(g, {p});
  CHECK(reducer.all_reduce_gradients() == 0);
  CHECK(p.grad().to_vector<float>() == std::vector<float>{0.5f, -1});
}

TEST_CASE("init_process_group: outside a launcher, the single process; bad settings are errors", "[distributed]") {
  CHECK_THROWS_WITH(distributed::init_process_group("nccl"), Contains("backend 'nccl'"));
  CHECK_THROWS_WITH(distributed::init_process_group("mpi", 0), Contains("timeout must be > 0 seconds"));
  ::setenv("WORLD_SIZE", "2", 1);
  struct Restore {
    ~Restore() { ::unsetenv("WORLD_SIZE"); }
  } restore;
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE"))
    CHECK_THROWS_WITH(distributed::init_process_group("mpi"), Contains("WORLD_SIZE"));
  ::unsetenv("WORLD_SIZE");
  const distributed::ProcessGroup& g = distributed::init_process_group("mpi");
  CHECK(g.world_size() == 1);
  CHECK(&g == &distributed::default_group());
  CHECK(distributed::is_initialized());
}
