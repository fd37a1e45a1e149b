// bench_tokenizer — galvani's tokenizer against Hugging Face `tokenizers` on the novel.
//
//   bench_tokenizer [--tokenizer PATH/tokenizer.json] [--text FILE] [--runs N] [--python PY]
//
// Times, in one run of this program:
//   galvani encode(novel)             1 thread, the whole novel as one string (with offsets)
//   galvani encode_batch(paragraphs)  1 thread and all threads
//   HF      encode(novel)             same text, via PY -c (tokenizers' Tokenizer.encode)
//   HF      encode_batch(paragraphs)  all threads (rayon)
// Each is timed N times after one warm-up run (both sides then have warm word caches) and
// the median is reported. If PY cannot import tokenizers, only galvani's numbers print.
// Build with -DGALVANI_NATIVE=ON for the numbers in docs/benchmarks.md.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <galvani/core/paths.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double time_median(int runs, F&& f) {
  f();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  return median(t);
}

// Paragraphs (split at blank lines), the batch both sides encode.
std::vector<std::string> paragraphs(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t e = text.find("\n\n", start);
    if (e == std::string::npos) e = text.size();
    else e += 2;
    out.push_back(text.substr(start, e - start));
    start = e;
  }
  return out;
}

const char* kPython = R"PY(
import json, statistics, sys, time
from tokenizers import Tokenizer
tok_path, text_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = Tokenizer.from_file(tok_path)
text = open(text_path, encoding="utf-8").read()
paras, start = [], 0
while start < len(text):
    e = text.find("\n\n", start)
    e = len(text) if e < 0 else e + 2
    paras.append(text[start:e]); start = e
def bench(f):
    f(); ts = []
    for _ in range(runs):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return statistics.median(ts)
n = len(tok.encode(text, add_special_tokens=False).ids)
t1 = bench(lambda: tok.encode(text, add_special_tokens=False))
tb = bench(lambda: tok.encode_batch(paras, add_special_tokens=False))
import tokenizers
print(json.dumps({"version": tokenizers.__version__, "ids": n, "encode_s": t1, "batch_s": tb}))
)PY";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmark galvani's tokenizer against Hugging Face tokenizers on the novel"};
  std::string tok_path, text_path, python;
  int runs = 7;
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: the shared GPT-2 one)");
  app.add_option("--text", text_path, "UTF-8 text to encode (default: the shared novel pg84.txt)");
  app.add_option("--runs", runs, "timed runs per measurement (median reported)");
  app.add_option("--python", python, "python with `tokenizers` (default: ../refenv/bin/python if present, else python3)");
  CLI11_PARSE(app, argc, argv);

  if (tok_path.empty()) {
    auto p = galvani::find_data_file("tokenizers/gpt2/tokenizer.json");
    if (!p) { std::cerr << galvani::data_file_missing("tokenizers/gpt2/tokenizer.json") << "\n"; return 1; }
    tok_path = p->string();
  }
  if (text_path.empty()) {
    auto p = galvani::find_data_file("frankenstein/pg84.txt");
    if (!p) { std::cerr << galvani::data_file_missing("frankenstein/pg84.txt") << "\n"; return 1; }
    text_path = p->string();
  }
  if (python.empty()) python = std::filesystem::exists("../refenv/bin/python") ? "../refenv/bin/python" : "python3";

  auto t0 = std::chrono::steady_clock::now();
  auto tok = galvani::Tokenizer::from_file(tok_path);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string text = galvani::read_text_file(text_path);
  auto paras = paragraphs(text);
  size_t n_ids = tok.encode(text, false).ids.size();
  int threads = omp_get_max_threads();

  std::printf("tokenizer %s\ntext      %s (%.1f KB, %zu paragraphs) -> %zu ids\n", tok_path.c_str(), text_path.c_str(),
              text.size() / 1e3, paras.size(), n_ids);
  std::printf("galvani load: %.3f s\n", load_s);

  tok.set_cache_capacity(65536);
  double cold = 0;
  {
    auto a = std::chrono::steady_clock::now();
    tok.encode(text, false);
    cold = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  }
  omp_set_num_threads(1);
  double g1 = time_median(runs, [&] { tok.encode(text, false); });
  double g1_ids = time_median(runs, [&] { tok.encode_ids(text, false); });
  galvani::EncodeOptions bo;
  bo.add_special_tokens = false;
  double gb1 = time_median(runs, [&] { tok.encode_batch(paras, bo); });
  omp_set_num_threads(threads);
  double gbn = time_median(runs, [&] { tok.encode_batch(paras, bo); });

  auto mbs = [&](double s) { return text.size() / 1e6 / s; };
  std::printf("\n%-44s %10s %10s\n", "", "seconds", "MB/s");
  std::printf("%-44s %10.4f %10.2f\n", "galvani encode, 1 thread, cold cache", cold, mbs(cold));
  std::printf("%-44s %10.4f %10.2f\n", "galvani encode, 1 thread", g1, mbs(g1));
  std::printf("%-44s %10.4f %10.2f\n", "galvani encode_ids, 1 thread", g1_ids, mbs(g1_ids));
  std::printf("%-44s %10.4f %10.2f\n", "galvani encode_batch, 1 thread", gb1, mbs(gb1));
  char label[64];
  std::snprintf(label, sizeof label, "galvani encode_batch, %d threads", threads);
  std::printf("%-44s %10.4f %10.2f\n", label, gbn, mbs(gbn));

  std::string cmd = python + " -c '" + kPython + "' '" + tok_path + "' '" + text_path + "' " + std::to_string(runs) + " 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    pclose(p);
  }
  galvani::json hf;
  try { hf = galvani::json::parse(out); } catch (...) {}
  if (!hf.is_object()) {
    std::printf("\n(Python `tokenizers` not importable with %s: only galvani's numbers)\n", python.c_str());
    return 0;
  }
  double h1 = hf["encode_s"], hb = hf["batch_s"];
  std::snprintf(label, sizeof label, "HF tokenizers %s encode, 1 thread", hf["version"].get<std::string>().c_str());
  std::printf("%-44s %10.4f %10.2f\n", label, h1, mbs(h1));
  std::printf("%-44s %10.4f %10.2f\n", "HF tokenizers encode_batch, all threads", hb, mbs(hb));
  std::printf("\nids equal in count: %s (%zu vs %zu)\n", hf["ids"].get<size_t>() == n_ids ? "yes" : "NO", n_ids,
              hf["ids"].get<size_t>());
  std::printf("speed ratio galvani / HF, encode 1 thread:  %.2fx\n", h1 / g1);
  std::printf("speed ratio galvani / HF, encode_batch all threads: %.2fx\n", hb / gbn);
  return 0;
}
