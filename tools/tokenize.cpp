// tokenize — galvani's tokenizer from the command line, for scripts and for checking by hand.
//
//   tokenize --tokenizer PATH/tokenizer.json [--add-special-tokens] < text.txt
//       prints the ids of the whole standard input (UTF-8) as one JSON array
//   tokenize --tokenizer PATH/tokenizer.json --decode [--skip-special-tokens] < ids.json
//       reads a JSON array of ids and prints the decoded text (exactly, no newline added)
//
// Input that is not valid UTF-8 is decoded as Python's bytes.decode("utf-8",
// errors="replace") would, so the ids match what a Python user gets.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <CLI/CLI.hpp>

#include <galvani/tokenizer/tokenizer.hpp>

int main(int argc, char** argv) {
  CLI::App app{
      "Encode standard input with a Hugging Face tokenizer.json (ids identical to the `tokenizers` package).\n"
      "  encode: tokenize --tokenizer PATH/tokenizer.json [--add-special-tokens] < text\n"
      "          prints the ids of the whole UTF-8 input as one JSON array, e.g. [15496, 995]\n"
      "  decode: tokenize --tokenizer PATH/tokenizer.json --decode [--skip-special-tokens] < ids.json\n"
      "          reads a JSON array of ids and prints the text"};
  std::string path;
  bool add_special = false, decode = false, skip_special = false;
  app.add_option("--tokenizer", path, "path to tokenizer.json (tokenizer_config.json beside it is read too)")->required();
  app.add_flag("--add-special-tokens", add_special, "add the model's special tokens (Mistral: <s> in front)");
  app.add_flag("--decode", decode, "read a JSON array of ids from stdin and print the text");
  app.add_flag("--skip-special-tokens", skip_special, "with --decode: leave special tokens out");
  CLI11_PARSE(app, argc, argv);

  try {
    auto tok = galvani::Tokenizer::from_file(path);
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (decode) {
      galvani::json j = galvani::parse_json_text(input, "<stdin>");
      if (!j.is_array()) throw galvani::Error("<stdin>: expected a JSON array of ids");
      std::vector<int32_t> ids;
      ids.reserve(j.size());
      for (size_t i = 0; i < j.size(); ++i) {
        // An id past int32 is refused, not wrapped into some other id. (One in range but outside
        // the vocabulary is skipped by decode, as tokenizers does.)
        const bool ok = j[i].is_number_integer() && j[i].get<int64_t>() >= INT32_MIN && j[i].get<int64_t>() <= INT32_MAX &&
                        !(j[i].is_number_unsigned() && j[i].get<uint64_t>() > uint64_t(INT32_MAX));
        if (!ok) throw galvani::Error("<stdin>: $[" + std::to_string(i) + "]: expected an integer id, got " + j[i].dump());
        ids.push_back(j[i].get<int32_t>());
      }
      std::string text = tok.decode(ids, skip_special);
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    std::vector<int32_t> ids = tok.encode_ids(input, add_special);
    input.clear();
    input.shrink_to_fit();
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ", ";
      out += std::to_string(ids[i]);
      if (out.size() > (1 << 20)) { std::fwrite(out.data(), 1, out.size(), stdout); out.clear(); }
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenize: %s\n", e.what());
    return 1;
  }
  return 0;
}
