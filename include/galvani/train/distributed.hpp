// train/distributed.hpp — data parallelism across processes: a process group over MPI and the
// pieces of torch's DistributedDataParallel the Trainer uses.
//
//   ProcessGroup            rank, world size, local rank; all_reduce, broadcast, barrier
//   init_process_group      torch.distributed.init_process_group("mpi"); the group the Trainer uses
//   distributed_indices     torch.utils.data.DistributedSampler's indices for one rank and epoch
//   GradientReducer         DDP's gradient averaging: trainable gradients in buckets, all-reduced
//
// Launch: `mpirun -np N program …` (Open MPI or MPICH); tools/launch.sh sets threads per rank.
// Each rank reads its place from MPI itself (MPI_Comm_rank/size; the local rank from Open MPI's
// OMPI_COMM_WORLD_LOCAL_RANK, MPICH's MPI_LOCALRANKID, or torchrun's LOCAL_RANK). torchrun-style
// variables (RANK, WORLD_SIZE) are checked against MPI's answer when set: the transport is MPI's,
// galvani has none of its own. Built without MPI (GALVANI_WITH_MPI unset: CMake found no MPI),
// the group is always the single process, and asking for more is an error that says so.
//
// Collectives wait at most the group's timeout (torch's `timeout`, default 30 minutes): a
// watchdog thread sees a collective that outlasts it, prints "galvani: rank R: all_reduce waited
// T s for the other ranks …" and ends the process (exit status 3), and the launcher then ends the
// others, so a rank that hangs or died never leaves the job hanging. (The collectives themselves
// are MPI's blocking ones: polling a non-blocking one made MPI progress only when polled, 8.4 s
// instead of 0.3 s for distilgpt2's 328 MB. Open MPI's mpirun also ends the job when a rank dies.)
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if GALVANI_WITH_MPI
#include <mpi.h>
#endif

#include "../core/tensor.hpp"
#include "../data/rng.hpp"

namespace galvani::distributed {

namespace detail {
// One per process, started by the first distributed collective and never destroyed (a thread
// waiting on a static at exit would be undefined): while a collective runs it waits until its
// deadline; a collective that ends in time simply moves the generation on.
class Watchdog {
 public:
  static Watchdog& get() {
    static Watchdog* w = new Watchdog();  // leaked on purpose
    return *w;
  }
  void begin(const char* what, int rank, double timeout_s) {
    std::lock_guard<std::mutex> lk(m_);
    if (!started_) {
      std::thread([this] { run(); }).detach();
      started_ = true;
    }
    what_ = what;
    rank_ = rank;
    timeout_ = timeout_s;
    since_ = std::chrono::steady_clock::now();
    ++generation_;
    cv_.notify_one();
  }
  void end() {
    std::lock_guard<std::mutex> lk(m_);
    what_ = nullptr;
    ++generation_;
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      if (!what_) {
        cv_.wait(lk);
        continue;
      }
      const uint64_t gen = generation_;
      const auto deadline = since_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                         std::chrono::duration<double>(timeout_));
      if (cv_.wait_until(lk, deadline, [&] { return generation_ != gen; })) continue;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
      std::fprintf(stderr,
                   "galvani: rank %d: %s waited %.0f s for the other ranks (the group's timeout): one of them died "
                   "or hangs. Ending this rank; the launcher ends the others (their output says why).\n",
                   rank_, what_, waited);
      std::fflush(stderr);
      std::_Exit(3);
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  const char* what_ = nullptr;
  int rank_ = 0;
  double timeout_ = 0;
  std::chrono::steady_clock::time_point since_;
  uint64_t generation_ = 0;
  bool started_ = false;
};

// Marks a collective for the watchdog for as long as it lives.
struct Watched {
  Watched(const char* what, int rank, double timeout_s) { Watchdog::get().begin(what, rank, timeout_s); }
  ~Watched() { Watchdog::get().end(); }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;
};
}  // namespace detail

// torch.distributed.ReduceOp: SUM, or AVG (the sum divided by the world size).
enum class ReduceOp { sum, avg };

class ProcessGroup {
 public:
  int rank() const { return rank_; }
  int world_size() const { return world_; }
  int local_rank() const { return local_rank_; }
  bool is_main_process() const { return rank_ == 0; }  // HF's `is_main_process`: logs, saves
  bool distributed() const { return world_ > 1; }
  const std::string& backend() const { return backend_; }
  double timeout_seconds() const { return timeout_; }
  // Whether MPI may be called from another thread than the main one, one at a time
  // (MPI_THREAD_SERIALIZED): GradientReducer's overlap needs it.
  bool threads_serialized() const { return serialized_; }

  // In place over every rank: `t` (contiguous, CPU, f32/f64/i64) becomes the elementwise sum
  // (or mean) of every rank's `t`. Shapes must agree across ranks (not checked: MPI sends bytes).
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) const {
    check_sendable(t, "all_reduce");
    if (t.dtype() == DType::f32) return all_reduce(t.data<float>(), t.numel(), op);
    if (t.dtype() == DType::f64) return all_reduce(t.data<double>(), t.numel(), op);
    if (t.dtype() == DType::i64) return all_reduce(t.data<int64_t>(), t.numel(), op);
    throw Error(galvani::detail::cat("all_reduce: dtype ", dtype_name(t.dtype()), " (f32, f64 or i64 only)"));
  }
  template <class T>
  void all_reduce(T* data, int64_t n, ReduceOp op = ReduceOp::sum) const {
    if (world_ > 1) {
#if GALVANI_WITH_MPI
      detail::Watched watched("all_reduce", rank_, timeout_);
      in_int_counts(n, [&](int64_t off, int count) {
        MPI_Allreduce(MPI_IN_PLACE, data + off, count, mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD);
      });
#endif
    }
    if (op == ReduceOp::avg)
      for (int64_t i = 0; i < n; ++i) data[i] /= T(world_);
  }
  double all_reduce(double v, ReduceOp op = ReduceOp::sum) const {
    all_reduce(&v, 1, op);
    return v;
  }
  // Rank `src`'s `t` (contiguous, CPU, any dtype) copied into every rank's `t`.
  void broadcast(Tensor& t, int src = 0) const {
    check_sendable(t, "broadcast");
    broadcast_bytes(t.raw_data(), int64_t(t.numel()) * int64_t(itemsize(t.dtype())), src);
  }
  void broadcast_bytes(void* data, int64_t bytes, int src = 0) const {
    if (world_ <= 1) return;
#if GALVANI_WITH_MPI
    detail::Watched watched("broadcast", rank_, timeout_);
    auto* p = static_cast<char*>(data);
    in_int_counts(bytes, [&](int64_t off, int count) { MPI_Bcast(p + off, count, MPI_BYTE, src, MPI_COMM_WORLD); });
#endif
  }
  // Every rank waits here until all have arrived (torch.distributed.barrier).
  void barrier() const {
    if (world_ <= 1) return;
#if GALVANI_WITH_MPI
    detail::Watched watched("barrier", rank_, timeout_);
    MPI_Barrier(MPI_COMM_WORLD);
#endif
  }

  // The single process (what a program run without mpirun gets).
  static ProcessGroup single() { return ProcessGroup(); }

 private:
  friend ProcessGroup& init_process_group(const std::string&, double);
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  std::string backend_ = "single";
  double timeout_ = 1800;
  bool serialized_ = false;

  // What MPI can send: a contiguous CPU tensor. Throws galvani::Error naming `what` otherwise.
  static void check_sendable(const Tensor& t, const char* what) {
    GALVANI_CHECK(t.device().is_cpu(), what, ": a ", t.device().str(), " tensor; the MPI group works on CPU "
                  "tensors (GPU tensors need NCCL, which comes with the CUDA backend, issue #16): .to(cpu) first");
    GALVANI_CHECK(t.is_contiguous(), what, ": a tensor of shape ", shape_str(t.shape()),
                  " that is not contiguous: pass t.contiguous() and copy the result back");
  }
  // Calls f(offset, count) over [0, n) in pieces of at most 2^30: MPI's counts are int.
  template <class F>
  static void in_int_counts(int64_t n, F&& f) {
    for (int64_t off = 0; off < n;) {
      const int count = int(std::min<int64_t>(n - off, int64_t(1) << 30));
      f(off, count);
      off += count;
    }
  }

#if GALVANI_WITH_MPI
  template <class T>
  static MPI_Datatype mpi_type() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, int64_t>) return MPI_INT64_T;
    else static_assert(sizeof(T) == 0, "all_reduce: float, double or int64_t");
  }
#endif
};

namespace detail {
inline ProcessGroup& default_group_storage() {
  static ProcessGroup group = ProcessGroup::single();
  return group;
}
inline bool& initialized_flag() {
  static bool initialized = false;
  return initialized;
}
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  GALVANI_CHECK(*end == 0 && x >= 0 && x < (1 << 24), "init_process_group: $", name, " is '", v,
                "', not a rank or size");
  return int(x);
}
}  // namespace detail

// torch.distributed.init_process_group(backend, timeout): joins the job this process was
// launched in. backend "mpi" (CPU tensors over MPI). Outside mpirun (MPI reports one process)
// the group is the single process, so one program serves both. Calling it again returns the
// same group. Throws galvani::Error: an unknown backend; a build without MPI while the
// environment says WORLD_SIZE > 1 or mpirun started it; RANK/WORLD_SIZE that disagree with MPI.
inline ProcessGroup& init_process_group(const std::string& backend = "mpi", double timeout_seconds = 1800) {
  ProcessGroup& g = detail::default_group_storage();
  if (detail::initialized_flag()) return g;
  GALVANI_CHECK(backend == "mpi", "init_process_group: backend '", backend,
                "' (galvani's CPU backend is \"mpi\"; NCCL comes with the CUDA backend)");
  GALVANI_CHECK(std::isfinite(timeout_seconds) && timeout_seconds > 0 && timeout_seconds <= 1e7,
                "init_process_group: timeout must be > 0 seconds and at most 1e7 (115 days), got ", timeout_seconds);
  g.timeout_ = timeout_seconds;
#if GALVANI_WITH_MPI
  // Not started by an MPI launcher (Open MPI's, MPICH's or PMIx's variables absent): the single
  // process, without MPI_Init (which in some containers is slow or warns on its own).
  const bool launched = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") ||
                        std::getenv("PMIX_RANK") || std::getenv("MPI_LOCALNRANKS");
  int ready = 0;
  MPI_Initialized(&ready);
  if (!launched && !ready) {
    const int env_world = detail::env_int("WORLD_SIZE", 1);
    GALVANI_CHECK(env_world <= 1, "init_process_group: $WORLD_SIZE is ", env_world,
                  " but no MPI launcher started this process: launch with mpirun -np ", env_world,
                  " (tools/launch.sh); galvani's CPU backend has no TCP rendezvous of its own");
    detail::initialized_flag() = true;
    return g;
  }
  if (!ready) {
    int provided = 0;
    // SERIALIZED: MPI from one thread at a time — the main one, or GradientReducer's
    // communication thread while backward runs (FUNNELED, the least galvani's OpenMP threads
    // need, is enough without the overlap).
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    GALVANI_CHECK(provided >= MPI_THREAD_FUNNELED, "init_process_group: this MPI library offers thread level ",
                  provided, ", below MPI_THREAD_FUNNELED, which galvani's OpenMP threads need: use Open MPI or MPICH");
    g.serialized_ = provided >= MPI_THREAD_SERIALIZED;
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  if (ready) {  // MPI started by the program itself: its level decides
    int level = 0;
    MPI_Query_thread(&level);
    g.serialized_ = level >= MPI_THREAD_SERIALIZED;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &g.world_);
  g.backend_ = g.world_ > 1 ? "mpi" : "single";
  const int env_rank = detail::env_int("RANK", g.rank_), env_world = detail::env_int("WORLD_SIZE", g.world_);
  GALVANI_CHECK(env_rank == g.rank_ && env_world == g.world_, "init_process_group: $RANK / $WORLD_SIZE say rank ",
                env_rank, " of ", env_world, " but MPI says rank ", g.rank_, " of ", g.world_,
                " (mpirun does not set them): unset RANK and WORLD_SIZE, or make them match the launch");
  g.local_rank_ = detail::env_int("OMPI_COMM_WORLD_LOCAL_RANK",
                                  detail::env_int("MPI_LOCALRANKID", detail::env_int("LOCAL_RANK", 0)));
#else
  const int env_world = std::max(detail::env_int("WORLD_SIZE", 1), detail::env_int("OMPI_COMM_WORLD_SIZE", 1));
  GALVANI_CHECK(env_world <= 1, "init_process_group: this program was built without MPI (CMake found none), "
                "but $WORLD_SIZE or the launcher asks for ", env_world, " processes. Install MPI (Debian: libopenmpi-dev "
                "openmpi-bin) and rebuild");
#endif
  detail::initialized_flag() = true;
  return g;
}

inline bool is_initialized() { return detail::initialized_flag(); }
// The group init_process_group made, or the single process when it was not called.
inline const ProcessGroup& default_group() { return detail::default_group_storage(); }

// torch.utils.data.DistributedSampler(num_replicas=world, rank=rank, shuffle=True, seed,
// drop_last=False) for `epoch` (set_epoch), with galvani's permutation (data/rng.hpp) in place
// of torch.randperm: the epoch's order, padded by repeating its start until every rank gets
// ceil(n / world) indices, and rank r takes every world-th index from r. With world 1 it is the
// single-process order, so rank r's b rows of batch k are rows r, r+W, … of the W·b rows a single
// process takes for batch k.
inline std::vector<int64_t> distributed_indices(int64_t n, uint64_t seed, int64_t epoch, int rank, int world) {
  GALVANI_CHECK(n > 0 && world > 0 && rank >= 0 && rank < world, "distributed_indices: n ", n, ", rank ", rank,
                " of ", world);
  std::vector<int64_t> order = permutation(n, seed + uint64_t(epoch));
  const int64_t per_rank = (n + world - 1) / world, total = per_rank * world;
  for (int64_t i = n; i < total; ++i) order.push_back(order[size_t((i - n) % n)]);
  std::vector<int64_t> mine;
  mine.reserve(size_t(per_rank));
  for (int64_t i = rank; i < total; i += world) mine.push_back(order[size_t(i)]);
  return mine;
}

// Ends every rank of the job now (MPI_Abort) when the default group is distributed; the single
// process just returns. For a program's error handler: a rank that failed alone would otherwise
// leave the others waiting in a collective until the group's timeout.
inline void abort_job(int code) {
  if (!default_group().distributed()) return;
  std::fflush(stdout);
  std::fflush(stderr);
#if GALVANI_WITH_MPI
  MPI_Abort(MPI_COMM_WORLD, code);
#endif
}

// DDP's gradient averaging (torch.nn.parallel.DistributedDataParallel): after the backward of
// an update's last micro-batch (the others run under `no_sync`: nothing is reduced), every
// trainable parameter's gradient becomes the mean over the ranks.
//
// Buckets. Gradients are packed in reverse parameter order (the order backward produces them,
// as DDP's buckets) into buckets of about `bucket_cap_mb` (DDP's and HF's ddp_bucket_cap_mb,
// default 25 MB) of f32, each all-reduced as one message, with one extra value per parameter
// saying whether this rank has a gradient for it: a parameter unused on some ranks counts as
// zeros there (DDP's find_unused_parameters), one unused on every rank keeps no gradient (the
// optimizer skips it, as it would in one process). Non-f32 gradients are reduced in f32 and
// converted back.
//
// Overlap (DDP's: communication hidden behind backward). With `overlap` and a group of more
// than one process, each parameter gets a post-accumulate-grad hook
// (Tensor::register_post_accumulate_grad_hook): when prepare_for_backward() has armed the
// reducer, the hook marks the parameter ready once backward has added its last gradient, and a
// bucket whose parameters are all ready is packed (on backward's thread) and handed to a
// communication thread, which all-reduces that buffer while backward goes on with the layers
// before. Only backward's thread ever touches a .grad: the means are copied back from finished
// buffers by later hooks and by all_reduce_gradients(). Buckets start strictly in order (bucket
// k only after 0..k-1), as DDP's do, so every rank issues the same collectives in the same
// order whatever its graph. At most kBuffersInFlight bucket buffers exist at a time, and
// backward never waits for one: a ready bucket with none free waits for a later hook. What is
// left (an unused parameter's bucket, or one that found no buffer) is packed by
// all_reduce_gradients(), which then waits for the communication thread. The results are
// bit-identical to the unoverlapped path (the same buckets, the same MPI reduction).
// Off by default on this MPI backend, unlike DDP: MPI waits by spinning, so the communication
// thread takes CPU from backward, and on a machine with no spare core that costs more than it
// hides — measured with 2 ranks x 1 thread on 2 cores, distilgpt2: 0.71-0.75x the tokens/s of
// the all-after-backward path (docs/distributed.md). It can pay where each rank leaves a core
// free (threads = cores - 1) and the network is slow. Needs MPI_THREAD_SERIALIZED
// (init_process_group asks for it): the communication thread is the only one calling MPI
// between the first launch and the wait.
// A parameter that reaches its last gradient twice in one backward — used inside a checkpointed
// segment and outside it, or in two segments (each recompute is a backward of its own) — is an
// error with overlap, as in DDP ("marked ready twice"), raised by all_reduce_gradients().
// After an exception has left backward or all_reduce_gradients() the reducer must not be used
// again (the ranks' collectives may be out of step): end the job (abort_job), as the programs do.
//
// Throws galvani::Error at construction: the ranks' trainable parameters differ in count or
// size (e.g. another LoRA config on one rank), as DDP checks at construction; bucket_cap_mb
// not > 0; with overlap, a parameter that is not a leaf requiring grad, or an MPI library
// without MPI_THREAD_SERIALIZED.
class GradientReducer {
 public:
  static constexpr int kBuffersInFlight = 3;

  GradientReducer(ProcessGroup group, std::vector<Tensor> params, double bucket_cap_mb = 25, bool overlap = false)
      : group_(std::move(group)), params_(std::move(params)) {
    GALVANI_CHECK(std::isfinite(bucket_cap_mb) && bucket_cap_mb > 0, "GradientReducer: bucket_cap_mb must be > 0, got ",
                  bucket_cap_mb);
    const int64_t cap = std::max<int64_t>(1, int64_t(std::min(bucket_cap_mb, 1e9) * 1024 * 1024 / 4));
    if (!group_.distributed()) return;
    int64_t mine[2] = {int64_t(params_.size()), 0};
    for (const Tensor& p : params_) mine[1] += p.numel();
    int64_t sum[2] = {mine[0], mine[1]};
    group_.all_reduce(sum, 2);
    GALVANI_CHECK(sum[0] == mine[0] * group_.world_size() && sum[1] == mine[1] * group_.world_size(),
                  "GradientReducer: rank ", group_.rank(), " has ", mine[0], " trainable parameters (", mine[1],
                  " values) but the ranks together have ", sum[0], " (", sum[1],
                  "): every rank must build the same model and adapters (same config, same target_modules)");
    // The buckets: reverse parameter order, a new bucket when the next parameter would overflow.
    bucket_of_.assign(params_.size(), 0);
    for (size_t k = params_.size(); k-- > 0;) {
      const int64_t n = params_[k].numel();
      if (buckets_.empty() || (!buckets_.back().members.empty() && buckets_.back().values + n > cap))
        buckets_.push_back(Bucket{});
      buckets_.back().members.push_back(k);
      buckets_.back().values += n;
      bucket_of_[k] = buckets_.size() - 1;
    }
    if (!overlap) return;
    GALVANI_CHECK(group_.threads_serialized(), "GradientReducer: overlap needs MPI_THREAD_SERIALIZED, which this MPI "
                  "library did not grant; turn ddp_overlap off (the default), or use Open MPI or MPICH");
    for (const Tensor& p : params_)
      GALVANI_CHECK(p.is_leaf() && p.requires_grad(), "GradientReducer: overlap needs leaves that require grad, but '",
                    p.name(), "' is not one (pass model.trainable_parameters())");
    for (size_t k = 0; k < params_.size(); ++k)  // cannot throw now (the checks above)
      hooks_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Tensor&) { ready(k); }));
    comm_ = std::make_shared<Comm>();
    comm_->group = group_;
    comm_->thread = std::thread([c = comm_] { c->run(); });
    overlap_ = true;
  }
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;
  ~GradientReducer() {
    for (RemovableHandle& h : hooks_) h.remove();
    if (!comm_) return;
    std::unique_lock<std::mutex> lk(comm_->m);
    comm_->stop = true;
    comm_->queue.clear();  // not started: dropped (only after an exception can any be left)
    comm_->cv.notify_all();
    const bool idle = !comm_->busy;
    lk.unlock();
    // A collective in flight (an exception left backward): the thread finishes it (or the
    // watchdog ends the process) on its own buffer, which it owns with the rest of Comm, so it
    // may outlive the reducer; it touches no tensor.
    if (idle) comm_->thread.join();
    else comm_->thread.detach();
  }

  // Broadcasts rank 0's values of `tensors` (e.g. model.parameters()) to every rank, as DDP's
  // constructor does, so all ranks start from the same weights.
  static void broadcast_parameters(const ProcessGroup& group, const std::vector<Tensor>& tensors) {
    for (Tensor t : tensors) group.broadcast(t, 0);
  }

  // Call before the backward of an update's last micro-batch (DDP: prepare_for_backward, which
  // its forward calls outside no_sync): with overlap, buckets may then start during that backward.
  void prepare_for_backward() {
    if (!overlap_) return;
    armed_ = true;
    next_bucket_ = 0;
    started_in_backward_ = 0;
    twice_.clear();
    seen_.assign(params_.size(), 0);
    for (Bucket& b : buckets_) b.pending = int64_t(b.members.size());
  }

  // Averages the gradients over the ranks (nothing to do for one process): packs the buckets
  // backward has not started, waits for all, and writes the means into the gradients. Returns
  // the seconds spent in the all-reduces themselves (on the communication thread when
  // overlapping), for the scaling numbers. waited_seconds() is how long this call took —
  // packing, waiting and unpacking: what the overlap did not hide.
  // Throws galvani::Error when a parameter was marked ready twice (see the class comment) or
  // a collective failed.
  double all_reduce_gradients() {
    waited_ = 0;
    if (!group_.distributed()) return 0;
    const auto t0 = std::chrono::steady_clock::now();
    double comm = 0;
    if (!overlap_) {
      for (size_t i = 0; i < buckets_.size(); ++i) {
        sync_buf_ = pack(buckets_[i], std::move(sync_buf_));
        comm += timed_mean(group_, sync_buf_);
        unpack(buckets_[i], sync_buf_);
      }
    } else {
      armed_ = false;
      while (next_bucket_ < buckets_.size()) {
        launch(next_bucket_, /*wait=*/true);
        ++next_bucket_;
      }
      next_bucket_ = 0;  // the next update starts from the first bucket, prepared or not
      last_started_ = started_in_backward_;
      started_in_backward_ = 0;
      std::string error;
      {
        std::unique_lock<std::mutex> lk(comm_->m);
        comm_->cv.wait(lk, [&] { return comm_->queue.empty() && !comm_->busy; });
        comm = comm_->seconds;
        comm_->seconds = 0;
        error = std::move(comm_->error);
        comm_->error.clear();
      }
      unpack_finished();
      if (!error.empty()) throw Error("GradientReducer: " + error);
      if (!twice_.empty())
        throw Error("GradientReducer: parameter '" + twice_ + "' got its last gradient twice in one backward (used both "
                    "inside and outside a checkpointed segment, or in two?), so its bucket may have been all-reduced "
                    "before its gradient was complete; turn the overlap off (TrainingArguments::ddp_overlap = false; "
                    "the programs' --ddp-overlap)");
    }
    waited_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return comm;
  }
  double waited_seconds() const { return waited_; }
  size_t bucket_count() const { return buckets_.size(); }
  bool overlapping() const { return overlap_; }
  // Buckets the last all_reduce_gradients() found already handed to the communication thread
  // by backward's hooks (how far the overlap reached).
  size_t buckets_started_in_backward() const { return last_started_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // parameter indices, in packing order
    int64_t values = 0;
    int64_t pending = 0;          // members not yet ready in this backward
  };

  // All-reduces a packed bucket in place into the mean over the ranks; the seconds it took.
  static double timed_mean(const ProcessGroup& group, std::vector<float>& buf) {
    const auto t0 = std::chrono::steady_clock::now();
    group.all_reduce(buf.data(), int64_t(buf.size()), ReduceOp::avg);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // Packs bucket b's gradients and flags into `buf` (reused if large enough).
  std::vector<float> pack(const Bucket& b, std::vector<float> buf) const {
    buf.assign(size_t(b.values) + b.members.size(), 0.0f);
    size_t off = 0, j = 0;
    for (size_t k : b.members) {
      const Tensor& p = params_[k];
      const int64_t n = p.numel();
      if (p.grad().defined()) {
        Tensor g = p.grad().dtype() == DType::f32 && p.grad().is_contiguous() ? p.grad()
                                                                                : p.grad().to(DType::f32).contiguous();
        std::memcpy(buf.data() + off, g.data<float>(), size_t(n) * sizeof(float));
        buf[size_t(b.values) + j] = 1.0f;  // the "used" flag
      }
      off += size_t(n);
      ++j;
    }
    return buf;
  }
  // Writes an all-reduced bucket (the means, then the flags) into its parameters' gradients.
  // Backward's thread only.
  void unpack(const Bucket& b, const std::vector<float>& buf) const {
    size_t off = 0, j = 0;
    for (size_t k : b.members) {
      const Tensor& p = params_[k];
      const int64_t n = p.numel();
      if (buf[size_t(b.values) + j] > 0) {
        const Tensor& have = p.grad();
        if (have.defined() && have.dtype() == DType::f32 && have.is_contiguous() && have.shape() == p.shape()) {
          std::memcpy(have.data<float>(), buf.data() + off, size_t(n) * sizeof(float));
        } else {
          Tensor g = Tensor::empty(p.shape(), DType::f32);
          std::memcpy(g.data<float>(), buf.data() + off, size_t(n) * sizeof(float));
          p.set_grad(p.dtype() == DType::f32 ? g : g.to(p.dtype()));
        }
      }
      off += size_t(n);
      ++j;
    }
  }
  // Copies back every bucket the communication thread has finished, and frees its buffer.
  void unpack_finished() {
    std::vector<Job> done;
    {
      std::lock_guard<std::mutex> lk(comm_->m);
      done.swap(comm_->done);
    }
    for (Job& job : done) unpack(buckets_[job.bucket], job.buf);
    std::lock_guard<std::mutex> lk(comm_->m);
    for (Job& job : done) comm_->free.push_back(std::move(job.buf));
    comm_->cv.notify_all();
  }

  // The hook: parameter k has its last gradient of this backward.
  void ready(size_t k) {
    if (!armed_) return;
    if (seen_[k]++) {
      if (twice_.empty()) twice_ = params_[k].name().empty() ? "#" + std::to_string(k) : params_[k].name();
      return;
    }
    --buckets_[bucket_of_[k]].pending;
    unpack_finished();  // frees buffers for the buckets below
    // Never waits: with every buffer in flight, the bucket waits for a later hook or for
    // all_reduce_gradients() (backward must not stall on the network, or on a starved thread).
    while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0 && launch(next_bucket_, false)) {
      ++next_bucket_;
      ++started_in_backward_;
    }
  }

  // Packs bucket i (on backward's thread) into a free buffer and queues it for the
  // communication thread. With `wait` false, returns false instead of waiting when no buffer is
  // free; waiting, it copies back finished buckets to free theirs.
  bool launch(size_t i, bool wait) {
    std::vector<float> buf;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(comm_->m);
        const auto in_use = [&] { return int(comm_->queue.size() + comm_->done.size()) + comm_->busy; };
        if (in_use() < kBuffersInFlight) {
          if (!comm_->free.empty()) {
            buf = std::move(comm_->free.back());
            comm_->free.pop_back();
          }
          break;
        }
        if (!wait) return false;
        comm_->cv.wait(lk, [&] { return !comm_->done.empty() || in_use() < kBuffersInFlight; });
      }
      unpack_finished();
    }
    buf = pack(buckets_[i], std::move(buf));
    std::lock_guard<std::mutex> lk(comm_->m);
    comm_->queue.push_back(Job{i, std::move(buf)});
    comm_->cv.notify_all();
    return true;
  }

  struct Job {
    size_t bucket;           // index into buckets_
    std::vector<float> buf;  // packed gradients and flags; the means once reduced
  };
  // The communication thread and what it shares with the reducer (kept alive by both). It
  // all-reduces buffers and nothing else: no tensor, no reducer state.
  struct Comm {
    ProcessGroup group;
    std::thread thread;
    std::mutex m;
    std::condition_variable cv;
    std::vector<Job> queue;                 // FIFO: launched in bucket order
    std::vector<Job> done;                  // reduced, waiting to be copied back
    std::vector<std::vector<float>> free;   // spent buffers, reused
    int busy = 0;                           // a job is being reduced
    bool stop = false;
    double seconds = 0;
    std::string error;
    void run() {
      std::unique_lock<std::mutex> lk(m);
      for (;;) {
        cv.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;  // stop
        Job job = std::move(queue.front());
        queue.erase(queue.begin());
        busy = 1;
        lk.unlock();
        double s = 0;
        std::string err;
        try {
          s = timed_mean(group, job.buf);
        } catch (const std::exception& e) {
          err = e.what();
        }
        lk.lock();
        seconds += s;
        if (!err.empty() && error.empty()) error = err;
        done.push_back(std::move(job));
        busy = 0;
        cv.notify_all();
      }
    }
  };

  ProcessGroup group_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  bool overlap_ = false;
  bool armed_ = false;
  size_t next_bucket_ = 0;
  size_t started_in_backward_ = 0, last_started_ = 0;
  std::vector<uint8_t> seen_;
  std::string twice_;
  std::vector<RemovableHandle> hooks_;
  std::shared_ptr<Comm> comm_;
  std::vector<float> sync_buf_;  // the unoverlapped path's bucket, reused
  double waited_ = 0;
};

}  // namespace galvani::distributed
