// inspect_checkpoint — list what a safetensors checkpoint holds, validating it on the way.
//
//   inspect_checkpoint model.safetensors
//   inspect_checkpoint model.safetensors.index.json
//   inspect_checkpoint path/to/model-dir          (config.json is parsed too)
//
// Prints every tensor (name, dtype, shape, bytes), per-file and total counts, and the
// parsed config. A malformed file prints the error and exits with status 1.
#include <CLI/CLI.hpp>

#include <galvani/io/pretrained.hpp>

#include <cstdio>
#include <iostream>

using namespace galvani;
using namespace galvani::io;
namespace fs = std::filesystem;

static std::string human(uint64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

static void print_config(const fs::path& file) {
  ModelConfig mc = load_model_config(file);
  std::cout << "\nconfig (" << file.string() << "): model_type " << model_type_of(mc) << "\n";
  std::visit([](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    auto row = [](const char* k, const auto& v) { std::cout << "  " << std::left << std::setw(26) << k << v << "\n"; };
    if constexpr (std::is_same_v<C, GPT2Config>) {
      row("vocab_size", c.vocab_size);
      row("n_positions", c.n_positions);
      row("n_embd", c.n_embd);
      row("n_layer", c.n_layer);
      row("n_head", c.n_head);
      row("head_dim", c.head_dim());
      row("inner_dim (n_inner)", c.inner_dim());
      row("activation_function", c.activation_function);
      row("layer_norm_epsilon", c.layer_norm_epsilon);
      row("tie_word_embeddings", c.tie_word_embeddings ? "true" : "false");
    } else {
      row("vocab_size", c.vocab_size);
      row("hidden_size", c.hidden_size);
      row("intermediate_size", c.intermediate_size);
      row("num_hidden_layers", c.num_hidden_layers);
      row("num_attention_heads", c.num_attention_heads);
      row("num_key_value_heads", c.num_key_value_heads);
      row("head_dim", c.head_dim());
      row("hidden_act", c.hidden_act);
      row("max_position_embeddings", c.max_position_embeddings);
      row("rms_norm_eps", c.rms_norm_eps);
      row("rope_theta", c.rope_theta);
      row("sliding_window", c.sliding_window ? std::to_string(*c.sliding_window) : std::string("none"));
      row("tie_word_embeddings", c.tie_word_embeddings ? "true" : "false");
    }
    std::string eos;
    for (auto id : c.eos_token_id) eos += (eos.empty() ? "" : ",") + std::to_string(id);
    row("bos_token_id", c.bos_token_id ? std::to_string(*c.bos_token_id) : std::string("none"));
    row("eos_token_id", eos.empty() ? std::string("none") : eos);
    row("torch_dtype", c.torch_dtype.empty() ? std::string("(not set)") : c.torch_dtype);
  }, mc);
}

int main(int argc, char** argv) {
  CLI::App app{
      "List the tensors of a safetensors checkpoint (a .safetensors file, a model.safetensors.index.json, "
      "or a model directory) with dtype, shape and bytes, the totals, and the parsed config.json. "
      "The file is fully validated; a malformed checkpoint prints the error and exits with status 1."};
  std::string path;
  bool no_config = false;
  app.add_option("PATH", path, "a .safetensors file, an index .json, or a model directory")->required();
  app.add_flag("--no-config", no_config, "do not look for config.json");
  CLI11_PARSE(app, argc, argv);

  try {
    CheckpointFiles cf = resolve_checkpoint(path);
    if (cf.index)
      std::cout << "checkpoint: " << cf.index->path.string() << " (sharded: " << cf.files.size() << " files, "
                << cf.index->weight_map.size() << " tensors in the index"
                << (cf.index->total_size ? ", total_size " + std::to_string(*cf.index->total_size) : std::string())
                << ")\n";
    else
      std::cout << "checkpoint: " << cf.files[0].string() << "\n";

    uint64_t total_bytes = 0, total_params = 0, total_tensors = 0;
    std::map<std::string, std::pair<uint64_t, uint64_t>> by_dtype;  // dtype -> (tensors, bytes)
    std::string current;
    size_t width = 40;
    for_each_tensor(path, [&](const std::string& name, const TensorView& v) {
      if (v.file() != current) {
        current = v.file();
        auto f = SafetensorsFile::open(current, MappedFile::Mode::read_only);  // cheap: header only is touched
        std::cout << "\nfile: " << current << " (" << f.file_size() << " bytes, header " << f.header().header_size
                  << " bytes, " << f.size() << " tensors";
        for (const auto& [k, val] : f.metadata()) std::cout << ", " << k << "=" << val;
        std::cout << ")\n";
        for (const auto& t : f.tensors()) width = std::max(width, t.name.size() + 2);
        std::cout << "  " << std::left << std::setw(int(width)) << "name" << std::setw(8) << "dtype" << std::setw(22)
                  << "shape" << "bytes\n";
      }
      std::cout << "  " << std::left << std::setw(int(width)) << name << std::setw(8) << v.dtype_name()
                << std::setw(22) << shape_str(v.shape()) << v.nbytes() << "\n";
      total_bytes += v.nbytes();
      total_params += uint64_t(v.numel());
      ++total_tensors;
      auto& d = by_dtype[v.dtype_name()];
      d.first += 1;
      d.second += v.nbytes();
    }, MappedFile::Mode::read_only);

    std::cout << "\ntotal: " << total_tensors << " tensors, " << total_params << " parameters, " << total_bytes
              << " bytes (" << human(total_bytes) << ")\n";
    for (const auto& [dt, d] : by_dtype)
      std::cout << "  " << std::left << std::setw(8) << dt << d.first << " tensors, " << d.second << " bytes\n";
    if (cf.index && cf.index->total_size && *cf.index->total_size != total_bytes)
      std::cout << "note: the index's total_size " << *cf.index->total_size << " differs from the tensors' "
                << total_bytes << " bytes\n";

    if (!no_config) {
      fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
      if (dir.empty()) dir = ".";
      if (fs::exists(dir / "config.json")) print_config(dir / "config.json");
      else std::cout << "\nconfig: none (no config.json beside the checkpoint)\n";
    }
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
