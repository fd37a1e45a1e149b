// bench_checkpoint — is opening a checkpoint as cheap as reading the file once?
//
// Writes a DistilGPT-2-shaped f32 checkpoint (81.9 M parameters, ~330 MB) to /tmp,
// then times, side by side and repeated:
//   cat      `cat FILE > /dev/null`
//   open     SafetensorsFile::open + validation + one load per 4 KiB page of every tensor
//   scan     open + reading every byte of every tensor (an XOR over 64-bit words)
// in two regimes: cold (the file's pages dropped from the page cache with
// posix_fadvise(DONTNEED) before each run, which needs no root) and warm (cached).
// Prints the median of each and the ratios to cat, then deletes the file.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <galvani/io/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>

using namespace galvani;
using namespace galvani::io;

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static bool drop_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  ::fdatasync(fd);
  int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  return rc == 0;
}

static StateDict distilgpt2_shaped() {
  // (name, shape) as in distilgpt2's model.safetensors (without the mask buffers).
  const int64_t C = 768, V = 50257, P = 1024, L = 6;
  std::vector<std::pair<std::string, Shape>> shapes = {{"transformer.wte.weight", {V, C}}, {"transformer.wpe.weight", {P, C}}};
  for (int64_t i = 0; i < L; ++i) {
    std::string h = "transformer.h." + std::to_string(i) + ".";
    for (auto [n, s] : std::vector<std::pair<std::string, Shape>>{
             {"ln_1.weight", {C}}, {"ln_1.bias", {C}}, {"attn.c_attn.weight", {C, 3 * C}}, {"attn.c_attn.bias", {3 * C}},
             {"attn.c_proj.weight", {C, C}}, {"attn.c_proj.bias", {C}}, {"ln_2.weight", {C}}, {"ln_2.bias", {C}},
             {"mlp.c_fc.weight", {C, 4 * C}}, {"mlp.c_fc.bias", {4 * C}}, {"mlp.c_proj.weight", {4 * C, C}},
             {"mlp.c_proj.bias", {C}}})
      shapes.push_back({h + n, s});
  }
  shapes.push_back({"transformer.ln_f.weight", {C}});
  shapes.push_back({"transformer.ln_f.bias", {C}});
  StateDict sd;
  uint32_t x = 12345;
  for (auto& [n, s] : shapes) {
    Tensor t = Tensor::empty(s, DType::f32);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {  // cheap xorshift: incompressible bytes
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      p[i] = float(int32_t(x)) * 1e-10f;
    }
    sd.insert(n, t);
  }
  return sd;
}

int main(int argc, char** argv) {
  CLI::App app{"Time opening a ~330 MB f32 safetensors checkpoint and touching every tensor against cat > /dev/null."};
  int reps = 5;
  std::string path = "/tmp/galvani_bench_checkpoint.safetensors";
  app.add_option("--reps", reps, "repetitions per measurement (median reported)");
  app.add_option("--file", path, "where to write the temporary checkpoint (deleted at the end)");
  CLI11_PARSE(app, argc, argv);

  {
    StateDict sd = distilgpt2_shaped();
    double t0 = now();
    save_safetensors(path, sd, {{"format", "pt"}});
    std::cout << "wrote " << path << ": " << sd.size() << " tensors, " << std::filesystem::file_size(path)
              << " bytes in " << now() - t0 << " s\n";
  }
  const std::string cat_cmd = "cat '" + path + "' > /dev/null";

  auto run_cat = [&] {
    double t0 = now();
    if (std::system(cat_cmd.c_str()) != 0) throw Error("cat failed");
    return now() - t0;
  };
  volatile uint64_t sink = 0;
  auto run_open = [&] {  // one load per page of every tensor
    double t0 = now();
    auto f = SafetensorsFile::open(path, MappedFile::Mode::read_only);
    f.mapped_file()->advise_sequential();
    uint64_t s = 0;
    for (const auto& v : f.views()) {
      const uint8_t* p = v.data();
      for (size_t i = 0; i < v.nbytes(); i += 4096) s += p[i];
    }
    sink = sink + s;
    return now() - t0;
  };
  auto run_scan = [&] {  // every byte of every tensor
    double t0 = now();
    auto f = SafetensorsFile::open(path, MappedFile::Mode::read_only);
    f.mapped_file()->advise_sequential();
    uint64_t s = 0;
    for (const auto& v : f.views()) {
      const auto* p = reinterpret_cast<const uint64_t*>(v.data());  // 8-aligned: safetensors pads the header
      for (size_t i = 0; i < v.nbytes() / 8; ++i) s ^= p[i];
    }
    sink = sink + s;
    return now() - t0;
  };

  bool can_drop = drop_cache(path);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (bool cold : {true, false}) {
    if (cold && !can_drop) {
      std::cout << "cold: skipped (posix_fadvise DONTNEED failed)\n";
      continue;
    }
    std::vector<double> c, o, s;
    if (!cold) run_cat();  // warm the cache
    for (int r = 0; r < reps; ++r) {  // interleaved, so drift hits all three alike
      if (cold) drop_cache(path);
      c.push_back(run_cat());
      if (cold) drop_cache(path);
      o.push_back(run_open());
      if (cold) drop_cache(path);
      s.push_back(run_scan());
    }
    double mc = median(c), mo = median(o), ms = median(s);
    double mb = double(std::filesystem::file_size(path)) / 1e6;
    std::printf("%s (median of %d): cat %.4f s (%.0f MB/s) | open+touch pages %.4f s, ratio %.2f | "
                "open+read all bytes %.4f s, ratio %.2f\n",
                cold ? "cold" : "warm", reps, mc, mb / mc, mo, mo / mc, ms, ms / mc);
  }
  std::filesystem::remove(path);
  return 0;
}
