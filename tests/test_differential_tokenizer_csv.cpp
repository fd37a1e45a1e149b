// Differential tests (issue #17): galvani's tokenizer.json loader and CSV reader against the
// reference implementations, Hugging Face `tokenizers` and pandas.read_csv with its defaults.
//
// tools/gen_differential_tokenizer_csv.py wrote tests/fixtures/differential/{tokenizer,csv}/:
// small files, valid and subtly invalid (unusual but legal JSON, duplicate keys, missing and
// unknown fields, odd merges and added tokens, every component galvani implements; odd CSV
// quoting, line endings, NA spellings, ragged rows, dtypes), and verdicts.json: what the
// reference made of each file — rejected, or accepted and what it read (token ids, offsets and
// decodes of fixed sample strings; columns, dtypes and every cell).
//
// For every file galvani must agree: reject what the reference rejects, with a galvani::Error
// naming the file, and read exactly what it reads. Where galvani differs on purpose, kDeliberate
// below lists the file, what galvani does instead and why (docs/robustness.md says the same);
// the test checks that galvani does exactly that, so a change of behaviour fails here too.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

using namespace galvani;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kDir = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/differential";

// What galvani does instead of what the reference does, for one file:
//   "rejects: <text>"    a galvani::Error whose message holds <text> (and the file's path);
//   "reads as: <file>"   accepted, and reads what the reference read from <file> (a file of the
//                        same folder that differs from this one only in what galvani ignores).
struct Deliberate {
  const char* folder;
  const char* file;
  const char* galvani;
  const char* reason;
};

// clang-format off
const Deliberate kDeliberate[] = {
    // ---- tokenizer.json: components galvani does not implement are refused by name when the
    // file is read, rather than accepted and then tokenized differently.
    {"tokenizer", "model_wordpiece_unsupported.json", "rejects: unsupported model type \"WordPiece\"",
     "galvani implements the BPE model only (GPT-2, Mistral, Llama); a WordPiece or Unigram model is "
     "refused by name when the file is read."},
    {"tokenizer", "normalizer_bert_unsupported.json", "rejects: unsupported normalizer type \"BertNormalizer\"",
     "galvani refuses a normalizer it does not implement, by name, when the file is read; tokenizers "
     "implements them all."},
    {"tokenizer", "pre_tokenizer_bert_unsupported.json", "rejects: unsupported pre_tokenizer type \"BertPreTokenizer\"",
     "galvani refuses a pre-tokenizer it does not implement, by name, when the file is read."},
    {"tokenizer", "decoder_wordpiece_unsupported.json", "rejects: unsupported decoder type \"WordPiece\"",
     "galvani refuses a decoder it does not implement, by name, when the file is read."},
    {"tokenizer", "normalizer_replace_regex.json", "rejects: unsupported Replace pattern: Regex",
     "tokenizers runs Oniguruma regexes (Unicode \\w, \\s, \\d; lookahead), which galvani does not: a "
     "Replace normalizer with a Regex pattern is refused by name (String patterns work)."},
    {"tokenizer", "pre_tokenizer_split_unsupported_regex.json", "rejects: unsupported Split regex",
     "tokenizers runs Oniguruma regexes, which galvani does not: a Split pre-tokenizer takes a String "
     "pattern or one of the regexes it knows (GPT-2's pattern, \\w+|[^\\w\\s]+, \\s+); any other regex is "
     "refused by name."},
    {"tokenizer", "model_bpe_dropout.json", "rejects: BPE dropout",
     "BPE dropout makes encoding random, which is for training a tokenizer; galvani refuses it rather than "
     "give ids that differ from run to run."},
    {"tokenizer", "post_processor_template_missing_special.json", "rejects: special token \"<bos>\" is not in special_tokens",
     "A TemplateProcessing that names a special token missing from its special_tokens is accepted by "
     "tokenizers, which then panics on every encode; galvani refuses the file when it reads it."},
    // ---- tokenizer.json: galvani reads what tokenizers refuses
    {"tokenizer", "unknown_field_top_level.json", "reads as: base_plain_pretty.json",
     "galvani ignores unknown keys at every level of tokenizer.json; tokenizers 0.23 ignores them inside "
     "components but fails with a syntax error (\"expected `,` or `}`\") on one at the top level."},
    {"tokenizer", "added_flags_missing.json", "reads as: added_id_wrong.json",
     "An added token without single_word and normalized gets the defaults of tokenizers' own "
     "AddedToken constructor (false, and normalized = not special); tokenizers' file reader requires them."},
    // ---- tokenizer.json: galvani reads the same file differently
    {"tokenizer", "padding_fixed.json", "reads as: base_plain_pretty.json",
     "galvani ignores a \"padding\" written in tokenizer.json, as transformers does (it turns the file's "
     "padding off unless a call asks for it); encode_batch pads when EncodeOptions say so."},
    // ---- CSV: galvani is stricter than pandas' C parser
    {"csv", "duplicate_columns.csv", "rejects: the header names the column 'a' twice",
     "pandas renames a repeated column name (a, a.1); galvani's Table refuses the file and names the "
     "column, because code that selects a column by name would silently get the first one."},
    {"csv", "ragged_too_many_first_row.csv", "rejects: 3 fields, but the header has 2",
     "When the first data row has one field more than the header, pandas silently makes the first "
     "column the index; galvani refuses a row with too many fields wherever it is."},
    {"csv", "quote_inside_unquoted.csv", "rejects: a quote (\") inside an unquoted field",
     "pandas keeps a quote inside an unquoted field as text; galvani follows RFC 4180 and refuses it, "
     "naming line and column, since it is usually a field that should have been quoted."},
    {"csv", "text_after_closing_quote.csv", "rejects: after the closing quote of a quoted field",
     "pandas appends text after a closing quote to the field (\"abc\"def reads abcdef); galvani follows "
     "RFC 4180 and refuses it, naming line and column, since it is usually an undoubled quote."},
    {"csv", "space_after_closing_quote.csv", "rejects: after the closing quote of a quoted field",
     "pandas keeps a space after a closing quote as part of the field; galvani refuses it as it refuses "
     "any text between a closing quote and the delimiter."},
};
// clang-format on

const Deliberate* deliberate(const std::string& folder, const std::string& file) {
  for (const Deliberate& d : kDeliberate)
    if (folder == d.folder && file == d.file) return &d;
  return nullptr;
}

json load_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return json::parse(in);
}

// The outcome of running galvani's reader on one file: the reading, or the Error's message.
// Any other exception type fails the test: bad input must end in galvani::Error.
struct Outcome {
  bool accepted = false;
  json reading;
  std::string error;
};

template <class F>
Outcome run_reader(F&& read) {
  Outcome o;
  try {
    o.reading = read();
    o.accepted = true;
  } catch (const Error& e) {
    o.error = e.what();
  } catch (const std::exception& e) {
    FAIL("not a galvani::Error but " << typeid(e).name() << ": " << e.what());
  }
  return o;
}

// ------------------------------------------------------------------ tokenizer

json offsets_json(const std::vector<std::pair<size_t, size_t>>& o) {
  json a = json::array();
  for (auto [b, e] : o) a.push_back({b, e});
  return a;
}

// The reading, in the generator's format (ids_plain, offsets_plain and decode_skip only where
// they differ from ids, offsets and decode); a sample whose encode throws is {"error": "..."}.
json tokenizer_reading(const Tokenizer& tok, const json& samples) {
  json out = json::array();
  for (const auto& s : samples) {
    const std::string text = s.get<std::string>();
    try {
      Encoding w = tok.encode(text, true), wo = tok.encode(text, false);
      json r = {{"ids", w.ids}, {"offsets", offsets_json(w.offsets)}, {"decode", tok.decode(w.ids, false)}};
      if (std::string skip = tok.decode(w.ids, true); skip != r["decode"]) r["decode_skip"] = skip;
      if (wo.ids != w.ids || wo.offsets != w.offsets) {
        r["ids_plain"] = wo.ids;
        r["offsets_plain"] = offsets_json(wo.offsets);
      }
      out.push_back(r);
    } catch (const Error& e) {
      out.push_back({{"error", e.what()}});
    }
  }
  return out;
}

// Error texts differ between implementations; that there is an error is what must agree.
json without_error_text(json r) {
  for (auto& s : r)
    if (s.contains("error")) s["error"] = "error";
  return r;
}

// The first sample where the two readings differ, for the failure message.
std::string first_difference(const json& got, const json& want, const json& samples) {
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    if (got[i] != want[i])
      return "sample " + samples[i].dump() + ":\n  galvani:   " + got[i].dump() + "\n  reference: " + want[i].dump();
  return "a different number of samples";
}

// ------------------------------------------------------------------ CSV

// A cell as pandas holds it in a column of this dtype, printed as the generator printed it;
// floats compare by value, so they are returned as parsed numbers.
json csv_cell(const Cell& c, const std::string& dtype) {
  if (!c) return nullptr;
  if (dtype == "int64" || dtype == "uint64") {
    bool negative = false;
    std::string_view digits;
    REQUIRE(detail::pd_int_syntax(*c, negative, digits));
    if (dtype == "int64") return std::to_string(*detail::pd_fit<int64_t>(negative, digits));
    return std::to_string(*detail::pd_fit<uint64_t>(negative, digits));
  }
  if (dtype == "float64") return *detail::pd_float(*c);
  if (dtype == "bool") return *detail::pd_bool(*c) ? "True" : "False";
  return *c;
}

json csv_reading(const Table& t) {
  json r = {{"columns", t.names()}, {"rows", t.rows()}, {"dtypes", json::array()}, {"cells", json::array()}};
  for (int64_t c = 0; c < t.cols(); ++c) r["dtypes"].push_back(dtype(t.column(c)));
  for (int64_t row = 0; row < t.rows(); ++row) {
    json cells = json::array();
    for (int64_t c = 0; c < t.cols(); ++c) cells.push_back(csv_cell(t.column(c)[size_t(row)], r["dtypes"][size_t(c)]));
    r["cells"].push_back(cells);
  }
  return r;
}

// The reference's reading with float cells parsed (Python's repr: "0.5", "1e+16", "inf").
json reference_csv_reading(const json& v) {
  json r = {{"columns", v["columns"]}, {"rows", v["rows"]}, {"dtypes", v["dtypes"]}, {"cells", v["cells"]}};
  for (auto& row : r["cells"])
    for (size_t c = 0; c < row.size(); ++c)
      if (r["dtypes"][c] == "float64" && row[c].is_string()) row[c] = std::strtod(row[c].get<std::string>().c_str(), nullptr);
  return r;
}

std::string csv_difference(const json& got, const json& want) {
  for (const char* k : {"columns", "rows", "dtypes"})
    if (got[k] != want[k]) return std::string(k) + ": galvani " + got[k].dump() + ", pandas " + want[k].dump();
  for (size_t r = 0; r < want["cells"].size(); ++r)
    if (got["cells"][r] != want["cells"][r])
      return "row " + std::to_string(r) + ": galvani " + got["cells"][r].dump() + ", pandas " + want["cells"][r].dump();
  return "";
}

// ------------------------------------------------------------------ the comparison

// Checks one file's outcome against the reference verdict, or against its kDeliberate row.
// `reference_reading(name)` gives the reference's reading of a file of the same folder.
template <class RefReading, class Differ>
void check_file(const std::string& folder, const std::string& name, const json& verdict, const Outcome& got,
                RefReading&& reference_reading, Differ&& differ) {
  const std::string path = (kDir / folder / name).string();
  INFO(folder << "/" << name << (verdict["accepted"].get<bool>() ? " (reference: accepted)"
                                                                 : " (reference: rejected: " + verdict["error"].get<std::string>() + ")"));
  if (!got.accepted) {
    INFO("galvani: " << got.error);
    CHECK_THAT(got.error, Catch::Contains(path));  // the message names the file
  }
  if (const Deliberate* d = deliberate(folder, name)) {
    INFO("deliberate difference: " << d->galvani << " — " << d->reason);
    const std::string spec = d->galvani;
    if (spec.rfind("rejects: ", 0) == 0) {
      CHECK(verdict["accepted"].get<bool>());  // the reference reads it: still a difference
      CHECK_FALSE(got.accepted);
      CHECK_THAT(got.error, Catch::Contains(spec.substr(9)));
    } else {
      REQUIRE(spec.rfind("reads as: ", 0) == 0);
      // The reference rejects the file, or reads it otherwise than the file galvani reads it as.
      CHECK((!verdict["accepted"].get<bool>() ||
             !differ(reference_reading(name), reference_reading(spec.substr(10))).empty()));
      CHECK(got.accepted);
      if (!got.accepted) return;
      std::string diff = differ(got.reading, reference_reading(spec.substr(10)));
      INFO(diff);
      CHECK(diff.empty());
    }
    return;
  }
  CHECK(got.accepted == verdict["accepted"].get<bool>());  // (not REQUIRE: every file is reported)
  if (got.accepted != verdict["accepted"].get<bool>() || !got.accepted || verdict.value("reading", json::object()).is_null()) return;
  std::string diff = differ(got.reading, reference_reading(name));
  INFO(diff);
  CHECK(diff.empty());
}

}  // namespace

TEST_CASE("differential: tokenizer.json files read as Hugging Face tokenizers reads them", "[differential][tokenizer]") {
  const json v = load_json(kDir / "tokenizer/verdicts.json");
  const json& samples = v["samples"];
  REQUIRE(v["files"].size() >= 40);
  auto reference_reading = [&](const std::string& name) {
    const json& f = v["files"].at(name);
    REQUIRE(f["accepted"].get<bool>());
    return without_error_text(v["readings"].at(f["reading"].get<std::string>()));
  };
  auto differ = [&](const json& got, const json& want) {
    return got == want ? std::string() : first_difference(got, want, samples);
  };
  for (const auto& [name, verdict] : v["files"].items()) {
    const std::string path = (kDir / "tokenizer" / name).string();
    Outcome got = run_reader([&] { return without_error_text(tokenizer_reading(Tokenizer::from_file(path), samples)); });
    check_file("tokenizer", name, verdict, got, reference_reading, differ);
  }
}

TEST_CASE("differential: CSV files read as pandas.read_csv reads them", "[differential][csv]") {
  const json v = load_json(kDir / "csv/verdicts.json");
  REQUIRE(v["files"].size() >= 40);
  auto reference_reading = [&](const std::string& name) { return reference_csv_reading(v["files"].at(name)); };
  for (const auto& [name, verdict] : v["files"].items()) {
    const std::string path = (kDir / "csv" / name).string();
    Outcome got = run_reader([&] { return csv_reading(read_csv(path)); });
    check_file("csv", name, verdict, got, reference_reading, csv_difference);
  }
}

TEST_CASE("differential: every deliberate difference names a file of the corpus", "[differential]") {
  for (const Deliberate& d : kDeliberate) {
    INFO(d.folder << "/" << d.file);
    CHECK(load_json(kDir / d.folder / "verdicts.json")["files"].contains(d.file));
  }
}
