// Course step 2 — split the snippets 80/20, tokenize them with the model's own
// tokenizer.json, and collate a batch the way the trainer will see it.
//
// The notebook did:
//   train_df, test_df = train_test_split(df, test_size=0.2)
//   tokenizer.pad_token = tokenizer.eos_token
//   ds = ds.map(lambda s: tokenizer(s["text"]), batched=True)   # no padding yet
//   collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
//
//   build/step2_dataset --out runs/step2       # then open runs/step2/token_lengths.svg
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <galvani/core/paths.hpp>
#include <galvani/data/chunking.hpp>
#include <galvani/data/collator.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/split.hpp>
#include <galvani/data/svg_plot.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "cli_checks.hpp"

using namespace galvani;

static void print_row(const char* name, const Batch& b, const std::vector<int64_t>& v, int64_t row, int64_t show) {
  std::printf("  %-15s[", name);
  for (int64_t t = 0; t < std::min(b.seq, show); ++t) std::printf("%s%lld", t ? ", " : "", static_cast<long long>(b.at(v, row, t)));
  std::printf("%s]\n", b.seq > show ? ", ..." : "");
}

int main(int argc, char** argv) {
  CLI::App app{"Course step 2: seeded 80/20 split, tokenization, causal-LM collation"};
  std::string csv_path = kDefaultChunksCsv, tok_path, out_dir = "runs/step2";
  uint64_t seed = 42;
  double test_size = 0.2;
  int64_t batch_size = 2;
  bool half = false;
  app.add_option("--csv", csv_path, "CSV made by tools/make_chunks")->capture_default_str();
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: tokenizers/gpt2/tokenizer.json in the shared data)");
  app.add_option("--out", out_dir, "folder for the token-length histogram SVG")->capture_default_str();
  app.add_option("--seed", seed, "seed of the split")->capture_default_str();
  app.add_option("--test-size", test_size, "fraction of rows for the test part")->capture_default_str()->check(cli::kFraction);
  app.add_option("--batch-size", batch_size, "rows in the example batch (the course uses 2)")->capture_default_str()->check(cli::kPositive);
  app.add_flag("--half", half, "keep only the first half of the rows, as the course's CPU run does (df[:len(df)//2])");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    DropReport dropped;
    Table df = read_text_csv(csv_path, "text", &dropped);
    if (dropped.total() > 0)
      std::printf("warning: dropped %lld missing and %lld blank rows from %s\n", static_cast<long long>(dropped.missing),
                  static_cast<long long>(dropped.blank), csv_path.c_str());
    if (half) df = df.head(df.rows() / 2);

    // train_test_split(df, test_size=0.2): sklearn's sizes, galvani's own (portable) shuffle.
    TableSplit split = train_test_split(df, test_size, seed);
    std::printf("rows: %lld -> train %lld, test %lld (seed %llu)\n", static_cast<long long>(df.rows()),
                static_cast<long long>(split.train.rows()), static_cast<long long>(split.test.rows()),
                static_cast<unsigned long long>(seed));

    if (tok_path.empty()) {
      const std::string rel = "tokenizers/gpt2/tokenizer.json";
      auto found = find_data_file(rel);
      GALVANI_CHECK(found, data_file_missing(rel), ", or pass --tokenizer");
      tok_path = found->string();
    }
    Tokenizer tok = Tokenizer::from_file(tok_path);
    GALVANI_CHECK(tok.eos_id(), tok_path, " names no EOS token; the collator pads with EOS (pad_token = eos_token)");
    const int64_t eos = *tok.eos_id();
    Encoder encode = [&](std::string_view s) { return tok.encode(s, /*add_special_tokens=*/true).ids; };

    TokenizedDataset train = tokenize(split.train.column("text"), encode);
    TokenizedDataset test = tokenize(split.test.column("text"), encode);
    std::printf("tokenizer: %s (pad = eos = %lld)\n", tok_path.c_str(), static_cast<long long>(eos));
    std::printf("DatasetDict({\n  train: Dataset({features: ['text', 'input_ids', 'attention_mask'], num_rows: %lld})"
                "  # %lld tokens\n  test:  Dataset({features: ['text', 'input_ids', 'attention_mask'], num_rows: %lld})"
                "  # %lld tokens\n})\n",
                static_cast<long long>(train.size()), static_cast<long long>(train.total_tokens()),
                static_cast<long long>(test.size()), static_cast<long long>(test.total_tokens()));

    std::printf("\n>>> tokens per snippet (train)\n%s", format_describe(describe(train.lengths()), "input_ids").c_str());
    std::printf("\n>>> tokens per snippet (test)\n%s", format_describe(describe(test.lengths()), "input_ids").c_str());

    const std::filesystem::path svg = std::filesystem::path(out_dir) / "token_lengths.svg";
    HistogramChart chart{"Tokens per snippet, train (" + std::to_string(train.size()) + " rows)", "tokens", "rows",
                         make_histogram(train.lengths(), 20)};
    save_svg(svg, to_svg(chart));
    std::printf("\nhistogram: %s\n", svg.string().c_str());

    // One batch as the trainer sees it: the first batch_size train rows.
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min(batch_size, train.size()); ++i) idx.push_back(i);
    Batch b = collate_causal_lm(train.gather(idx), {.pad_id = eos});
    std::printf("\n>>> collator(train[0:%lld])   # DataCollatorForLanguageModeling(mlm=False)\n",
                static_cast<long long>(b.batch));
    std::printf("input_ids, attention_mask, labels: (%lld, %lld)\n", static_cast<long long>(b.batch),
                static_cast<long long>(b.seq));
    for (int64_t r = 0; r < b.batch; ++r) {
      int64_t real = 0, ignored = 0;
      for (int64_t t = 0; t < b.seq; ++t) real += b.at(b.attention_mask, r, t), ignored += b.at(b.labels, r, t) == -100;
      std::printf("row %lld: %lld tokens, %lld padding, %lld labels = -100\n", static_cast<long long>(r),
                  static_cast<long long>(real), static_cast<long long>(b.seq - real), static_cast<long long>(ignored));
      print_row("input_ids", b, b.input_ids, r, 12);
      print_row("attention_mask", b, b.attention_mask, r, 12);
      print_row("labels", b, b.labels, r, 12);
      std::vector<int32_t> tail;  // the last real tokens, decoded
      for (int64_t t = std::max<int64_t>(0, real - 12); t < real; ++t) tail.push_back(int32_t(b.at(b.input_ids, r, t)));
      std::printf("  ends with: \"...%s\"\n", tok.decode(tail).c_str());
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
