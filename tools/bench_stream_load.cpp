// bench_stream_load — does streaming a Mistral-7B checkpoint stay within one shard of memory?
//
// Writes a Mistral-7B-v0.1-shaped checkpoint of random bf16 (291 tensors, 14.48 GB,
// model-0000i-of-0000n.safetensors shards of at most --max-shard-size plus
// model.safetensors.index.json, tensors assigned to shards as huggingface_hub does), drops
// it from the page cache, then streams it through galvani's per-tensor loader
// (load_streaming, models/load.hpp) in a child process whose callback keeps only a
// checksum of each tensor — the shape of the path [nf4] takes, which quantizes each tensor on
// arrival. The child's peak RSS (getrusage ru_maxrss) is compared with the largest shard, and
// every checksum with the one computed while writing. Two children run:
//   release   load_streaming's default: each tensor's pages are dropped (MADV_DONTNEED)
//             after its callback, so RSS holds about one tensor
//   keep      the same without dropping pages: RSS grows to the whole current shard
//             (mapped file pages count toward RSS) until the shard is unmapped
// With --model-load a third child builds a MistralForCausalLM of that shape without
// initialisation (BuildOptions: init empty) in --model-dtype (bf16 by default, the
// checkpoint's) and loads the checkpoint into it through the one load path
// (load_checkpoint, models/load.hpp): each parameter is allocated once, in its final dtype,
// and first touched by the load, so the peak should be the checkpoint's size plus about one
// tensor. With --model-dtype f32 the model is twice the checkpoint (29 GB at full size: use
// --scale).
// The files are deleted at the end (unless --keep-files).
//
//   build/bench_stream_load                         # full size: needs ~15 GB of free disk
//   build/bench_stream_load --model-load            # full size, bf16 model: ~15 GB of RAM
//   build/bench_stream_load --scale 4 --model-load  # hidden 1024: 291 tensors, ~1.1 GB
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include <galvani/models/load.hpp>
#include <galvani/models/mistral.hpp>

using namespace galvani;
namespace fs = std::filesystem;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double gb(double bytes) { return bytes / 1e9; }
long peak_rss_bytes() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss * 1024L;  // Linux reports KiB
}

struct TensorSpec {
  std::string name;
  Shape shape;
  uint64_t nbytes() const { return uint64_t(numel_of(shape)) * 2; }  // bf16
};

// Mistral-7B-v0.1's tensors in HF's order; --scale divides the hidden, kv and MLP widths.
std::vector<TensorSpec> mistral_tensors(const MistralConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t Q = c.num_attention_heads * c.head_dim(), KV = c.num_key_value_heads * c.head_dim();
  std::vector<TensorSpec> t = {{"model.embed_tokens.weight", {V, C}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "self_attn.q_proj.weight", {Q, C}});
    t.push_back({p + "self_attn.k_proj.weight", {KV, C}});
    t.push_back({p + "self_attn.v_proj.weight", {KV, C}});
    t.push_back({p + "self_attn.o_proj.weight", {C, Q}});
    t.push_back({p + "mlp.gate_proj.weight", {I, C}});
    t.push_back({p + "mlp.up_proj.weight", {I, C}});
    t.push_back({p + "mlp.down_proj.weight", {C, I}});
    t.push_back({p + "input_layernorm.weight", {C}});
    t.push_back({p + "post_attention_layernorm.weight", {C}});
  }
  t.push_back({"model.norm.weight", {C}});
  t.push_back({"lm_head.weight", {V, C}});
  return t;
}

// A checksum over the bytes, 8 at a time (a multiply-xor mix; order-sensitive).
uint64_t checksum(const uint8_t* p, size_t n, uint64_t h = 0x9E3779B97F4A7C15ull) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001B3ull;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

// Random bf16 in ±[2^-8, 2^-6): random sign and mantissa, exponents 119..120 (finite, small).
void fill_bf16(uint8_t* p, size_t n, uint64_t& state) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    z = (z & 0x80FF80FF80FF80FFull) | 0x3B803B803B803B80ull;  // per bf16: sign, 1 exp bit, 7 mantissa
    std::memcpy(p + i, &z, 8);
  }
}

struct Written {
  std::vector<fs::path> shards;
  std::vector<uint64_t> shard_bytes;
  std::map<std::string, uint64_t> checksums;
  uint64_t total = 0;
};

// huggingface_hub's split: in order, a tensor joins the current shard unless that passes the limit.
Written write_checkpoint(const fs::path& dir, const std::vector<TensorSpec>& specs, uint64_t max_shard) {
  std::vector<std::vector<const TensorSpec*>> plan(1);
  uint64_t cur = 0;
  for (const auto& s : specs) {
    if (cur + s.nbytes() > max_shard && !plan.back().empty()) plan.emplace_back(), cur = 0;
    plan.back().push_back(&s);
    cur += s.nbytes();
  }
  Written w;
  nlohmann::json weight_map = nlohmann::json::object();
  std::vector<uint8_t> buf(64 << 20);
  uint64_t rng = 7;
  for (size_t k = 0; k < plan.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, plan.size());
    // safetensors' layout: u64 header length, JSON header (tensors sorted by name, padded
    // with spaces to 8 bytes), then the data in header order.
    auto items = plan[k];
    std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->name < b->name; });
    std::string h = "{\"__metadata__\":{\"format\":\"pt\"}";
    uint64_t off = 0;
    for (auto* s : items) {
      // Appends only: GCC 12 warns falsely (-Wrestrict) on `"," + std::string`.
      h += ",\"";
      h += s->name;
      h += "\":{\"dtype\":\"BF16\",\"shape\":[";
      for (size_t i = 0; i < s->shape.size(); ++i) {
        if (i) h += ',';
        h += std::to_string(s->shape[i]);
      }
      h += "],\"data_offsets\":[";
      h += std::to_string(off);
      h += ',';
      h += std::to_string(off + s->nbytes());
      h += "]}";
      off += s->nbytes();
      weight_map[s->name] = name;
    }
    h += "}";
    h.append((8 - h.size() % 8) % 8, ' ');
    const fs::path path = dir / name;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    GALVANI_CHECK(f, path.string(), ": cannot create");
    uint64_t hl = h.size();
    std::fwrite(&hl, 8, 1, f);  // little-endian on every machine galvani runs on
    std::fwrite(h.data(), 1, h.size(), f);
    for (auto* s : items) {
      uint64_t left = s->nbytes(), sum = 0x9E3779B97F4A7C15ull;
      while (left) {
        const size_t n = size_t(std::min<uint64_t>(left, buf.size()));
        fill_bf16(buf.data(), n, rng);
        sum = checksum(buf.data(), n, sum);
        GALVANI_CHECK(std::fwrite(buf.data(), 1, n, f) == n, path.string(), ": write failed (disk full?)");
        left -= n;
      }
      w.checksums[s->name] = sum;
    }
    GALVANI_CHECK(std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0, path.string(), ": flush failed");
    // Drop the pages from the page cache, so the stream reads from disk (cold).
    ::posix_fadvise(::fileno(f), 0, 0, POSIX_FADV_DONTNEED);
    std::fclose(f);
    w.shards.push_back(path);
    w.shard_bytes.push_back(8 + h.size() + off);
    w.total += off;
    std::printf("  wrote %s: %zu tensors, %.3f GB\n", name, items.size(), gb(double(w.shard_bytes.back())));
    std::fflush(stdout);
  }
  nlohmann::json idx = {{"metadata", {{"total_size", w.total}}}, {"weight_map", weight_map}};
  std::ofstream(dir / "model.safetensors.index.json") << idx.dump(2);
  return w;
}

struct ChildResult {
  long baseline_rss = 0, peak_rss = 0;
  double seconds = 0;
  uint64_t tensors = 0, bytes = 0, mismatches = 0;
};

// Run `f` in a forked child (a fresh ru_maxrss) and bring its numbers back through a pipe.
template <class F>
ChildResult in_child(F&& f) {
  int fds[2];
  GALVANI_CHECK(::pipe(fds) == 0, "pipe failed");
  pid_t pid = ::fork();
  GALVANI_CHECK(pid >= 0, "fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    ChildResult r;
    r.baseline_rss = peak_rss_bytes();
    try {
      f(r);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      ::_exit(1);
    }
    r.peak_rss = peak_rss_bytes();
    (void)!::write(fds[1], &r, sizeof r);
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildResult r;
  const bool got = ::read(fds[0], &r, sizeof r) == ssize_t(sizeof r);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  GALVANI_CHECK(got && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the streaming child failed");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Peak RSS of streaming a Mistral-7B-shaped bf16 checkpoint through the per-tensor loader"};
  std::string dir_s = "/tmp/galvani_bench_stream_mistral7b", max_shard_s = "auto";
  int64_t scale = 1;
  bool model_load = false, keep_files = false;
  app.add_option("--dir", dir_s, "where to write the checkpoint (deleted afterwards)")->capture_default_str();
  app.add_option("--max-shard-size", max_shard_s,
                 "shard limit, as save_pretrained's max_shard_size; auto: 5GB scaled with the checkpoint (3 shards)")
      ->capture_default_str();
  app.add_option("--scale", scale, "divide hidden, kv and MLP widths by this (keeps the 291 tensors)")->capture_default_str();
  app.add_flag("--model-load", model_load, "also load into an uninitialised MistralForCausalLM of this shape");
  std::string model_dtype_s = "bf16";
  app.add_option("--model-dtype", model_dtype_s, "dtype of that model's parameters: bf16 or f32")
      ->check(CLI::IsMember({"bf16", "f32"}));
  app.add_flag("--keep-files", keep_files, "do not delete the checkpoint");
  CLI11_PARSE(app, argc, argv);

  const fs::path dir = dir_s;
  try {
    MistralConfig cfg = std::get<MistralConfig>(io::parse_model_config(nlohmann::json{
        {"model_type", "mistral"}, {"hidden_size", 4096}, {"intermediate_size", 14336}, {"num_hidden_layers", 32},
        {"num_attention_heads", 32}, {"num_key_value_heads", 8}, {"vocab_size", 32000}, {"rms_norm_eps", 1e-5},
        {"sliding_window", 4096}, {"max_position_embeddings", 32768}, {"torch_dtype", "bfloat16"}}));
    GALVANI_CHECK(scale >= 1 && 4096 % (32 * scale) == 0 && 14336 % scale == 0, "--scale must divide 128 and 14336");
    cfg.hidden_size /= scale;
    cfg.intermediate_size /= scale;
    const auto specs = mistral_tensors(cfg);
    uint64_t total = 0, largest_tensor = 0;
    for (const auto& s : specs) total += s.nbytes(), largest_tensor = std::max(largest_tensor, s.nbytes());

    fs::remove_all(dir);
    fs::create_directories(dir);
    const uint64_t free_bytes = fs::space(dir).available;
    std::printf("Mistral-7B shape%s: %zu tensors, %.3f GB bf16 (largest tensor %.3f GB); %.1f GB free at %s\n",
                scale > 1 ? (" / " + std::to_string(scale)).c_str() : "", specs.size(), gb(double(total)),
                gb(double(largest_tensor)), gb(double(free_bytes)), dir.c_str());
    GALVANI_CHECK(free_bytes > total + total / 10 + (2ull << 30), "not enough free disk for ", gb(double(total)),
                  " GB (+10% and 2 GiB spare); rerun with --scale 2 or 4, or --dir elsewhere");
    io::write_json_file(dir / "config.json", cfg.to_json());

    double t0 = now();
    // 5GB at full size (14.48 GB -> 3 shards); scaled down with the checkpoint so --scale keeps 3 shards.
    const uint64_t max_shard =
        max_shard_s == "auto" ? uint64_t(5e9 * double(total) / 14483464192.0) : io::parse_size(max_shard_s);
    Written w = write_checkpoint(dir, specs, max_shard);
    const uint64_t largest_shard = *std::max_element(w.shard_bytes.begin(), w.shard_bytes.end());
    std::printf("  written in %.1f s (%zu shards, largest %.3f GB); page cache dropped\n", now() - t0, w.shards.size(),
                gb(double(largest_shard)));
    std::fflush(stdout);

    auto stream = [&](bool release) {
      return in_child([&](ChildResult& r) {
        const double s0 = now();
        StreamOptions opt;
        opt.release_pages = release;
        load_streaming(dir, [&](const std::string& name, const io::TensorView& v) {
          // The checksum is all this callback keeps; [nf4] will quantize here instead.
          if (checksum(v.data(), v.nbytes()) != w.checksums.at(name)) ++r.mismatches;
          ++r.tensors;
          r.bytes += v.nbytes();
        }, opt);
        r.seconds = now() - s0;
      });
    };
    auto report = [&](const char* what, const ChildResult& r, const char* vs, uint64_t ref, bool checksummed = true) {
      std::printf("%-8s %3llu tensors, %.3f GB in %.1f s (%.2f GB/s): peak RSS %.3f GB (baseline %.3f GB) = %.3f x %s (%.3f GB)%s\n",
                  what, (unsigned long long)r.tensors, gb(double(r.bytes)), r.seconds, gb(double(r.bytes)) / r.seconds,
                  gb(double(r.peak_rss)), gb(double(r.baseline_rss)), double(r.peak_rss) / double(ref), vs,
                  gb(double(ref)), !checksummed ? "" : r.mismatches ? ", CHECKSUM MISMATCH" : ", checksums match");
      std::fflush(stdout);
    };
    for (bool release : {true, false, true}) {  // release twice: the first cold read may differ
      for (const auto& s : w.shards) {  // cold each time
        int fd = ::open(s.c_str(), O_RDONLY);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
      }
      ChildResult r = stream(release);
      report(release ? "release" : "keep", r, "largest shard", largest_shard);
      GALVANI_CHECK(r.tensors == specs.size() && r.mismatches == 0, "streaming lost or corrupted tensors");
    }
    if (model_load) {
      const DType model_dtype = model_dtype_s == "f32" ? DType::f32 : DType::bf16;
      const uint64_t model_bytes = (total / 2) * itemsize(model_dtype);
      ChildResult r = in_child([&](ChildResult& res) {
        BuildOptions opts;
        opts.init = ModuleInit::Mode::empty;
        opts.dtype = model_dtype;
        auto model = std::make_unique<MistralForCausalLM>(cfg, opts);
        res.baseline_rss = peak_rss_bytes();  // after the model exists (untouched pages: ~0)
        const double s0 = now();
        LoadReport rep = load_checkpoint(*model, dir, "mistral");
        res.seconds = now() - s0;
        res.tensors = rep.loaded.size();
        res.bytes = total;
      });
      report("model", r, (model_dtype_s + " model").c_str(), model_bytes, false);
      std::printf("         peak / checkpoint = %.3f x; peak - model = %.3f GB (largest tensor in bf16 %.3f GB)\n",
                  double(r.peak_rss) / double(total), gb(double(r.peak_rss) - double(model_bytes)),
                  gb(double(largest_tensor)));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_stream_load: %s\n", e.what());
    if (!keep_files) fs::remove_all(dir);
    return 1;
  }
  if (!keep_files) {
    fs::remove_all(dir);
    std::printf("deleted %s\n", dir.c_str());
  }
  return 0;
}
