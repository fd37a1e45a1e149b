// EDA (data/eda.hpp) and charts (data/svg_plot.hpp): describe() against
// pandas, make_histogram() against numpy, and the shape of info(), nunique(),
// isnull().sum(), sample() and the SVG files.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/svg_plot.hpp>

using namespace galvani;
namespace fs = std::filesystem;
using Catch::Matchers::WithinRel;

static const fs::path kFixtures = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/data";

static nlohmann::json load_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

static void check_describe(const Describe& d, const nlohmann::json& want) {
  CHECK(double(d.count) == want["count"].get<double>());
  auto near = [](double got, const nlohmann::json& w) {
    if (w.is_null()) CHECK(std::isnan(got));
    else CHECK_THAT(got, WithinRel(w.get<double>(), 1e-12) || Catch::Matchers::WithinAbs(w.get<double>(), 1e-12));
  };
  near(d.mean, want["mean"]);
  near(d.std, want["std"]);
  near(d.min, want["min"]);
  near(d.q25, want["25%"]);
  near(d.q50, want["50%"]);
  near(d.q75, want["75%"]);
  near(d.max, want["max"]);
}

TEST_CASE("describe() matches pandas: std ddof=1, linear quantiles", "[data][eda]") {
  const auto ref = load_json(kFixtures / "pandas.json");  // kept alive: the loop walks a part of it
  for (const auto& c : ref["describe"]) {
    INFO(c["name"].get<std::string>());
    std::vector<double> v = c["values"].get<std::vector<double>>();
    check_describe(describe(xt::adapt(v, {v.size()})), c["describe"]);
  }
  Describe empty = describe(xt::xtensor<double, 1>::from_shape({0}));
  CHECK(empty.count == 0);
  CHECK(std::isnan(empty.mean));
}

TEST_CASE("char_lengths counts characters (code points), like str.len()", "[data][eda]") {
  auto ref = load_json(kFixtures / "pandas.json")["csv"];
  for (auto& [name, want] : ref.items()) {
    INFO(name);
    Table t = read_csv(kFixtures / name);
    check_describe(describe(char_lengths(t.column(0))), want["char_len_describe"]);
  }
  CHECK(utf8_length("“Café” — Genève") == 15);
}

TEST_CASE("nunique() and isnull().sum() match pandas", "[data][eda]") {
  auto ref = load_json(kFixtures / "pandas.json")["csv"];
  for (auto& [name, want] : ref.items()) {
    INFO(name);
    Table t = read_csv(kFixtures / name);
    for (const auto& [col, n] : nunique(t)) CHECK(n == want["nunique"][col].get<int64_t>());
    for (const auto& [col, n] : isnull_sum(t)) CHECK(n == want["isnull_sum"][col].get<int64_t>());
  }
  Table t = read_csv(kFixtures / "tricky_basic.csv");
  CHECK(format_counts(isnull_sum(t)) == "text    2\nn       0\ndtype: int64\n");
}

TEST_CASE("histogram() matches np.histogram", "[data][eda]") {
  const auto ref = load_json(kFixtures / "pandas.json");
  for (const auto& c : ref["histogram"]) {
    INFO(c["name"].get<std::string>());
    std::vector<double> v = c["values"].get<std::vector<double>>();
    Histogram h = make_histogram(xt::adapt(v, {v.size()}), c["bins"].get<size_t>());
    auto edges = c["edges"].get<std::vector<double>>();
    auto counts = c["counts"].get<std::vector<double>>();
    REQUIRE(h.edges.size() == edges.size());
    for (size_t i = 0; i < edges.size(); ++i) CHECK_THAT(h.edges[i], WithinRel(edges[i], 1e-12));
    CHECK(h.counts == counts);
  }
  std::vector<double> same{4, 4, 4};  // numpy widens a zero range by 0.5 each side
  Histogram h = make_histogram(xt::adapt(same, {3}), 2);
  CHECK(h.edges == std::vector<double>{3.5, 4.0, 4.5});
  CHECK(h.counts == std::vector<double>{0, 3});
}

TEST_CASE("info() reads like df.info()", "[data][eda]") {
  Table t = read_csv(kFixtures / "tricky_basic.csv");
  std::string s = info(t);
  INFO(s);
  CHECK_THAT(s, Catch::Contains("RangeIndex: 9 entries, 0 to 8"));
  CHECK_THAT(s, Catch::Contains("Data columns (total 2 columns):"));
  CHECK_THAT(s, Catch::Contains(" 0   text    7 non-null      object"));
  CHECK_THAT(s, Catch::Contains(" 1   n       9 non-null      int64"));
  CHECK_THAT(s, Catch::Contains("dtypes: int64(1), object(1)"));
  CHECK_THAT(s, Catch::Contains("memory usage: "));
  CHECK(dtype(Column{Cell{"1.5"}, Cell{}, Cell{"-2"}}) == "float64");
  CHECK(dtype(Column{Cell{"1"}, Cell{" 2"}}) == "int64");  // pandas strips the whitespace around a number
}

// Issue #11, item 4: pandas.read_csv's type inference over one column per cell pattern
// (tools/gen_data_fixtures.py, DTYPE_PATTERNS): dtype, info()'s non-null count,
// nunique(), which cells are NaN, and describe() of the numeric columns.
TEST_CASE("dtype(), non-null counts, nunique() and describe() match pandas.read_csv", "[data][eda][dtypes]") {
  const auto ref = load_json(kFixtures / "pandas.json")["dtypes"];
  Table t = read_csv(kFixtures / ref["file"].get<std::string>());
  REQUIRE(t.cols() == int64_t(ref["columns"].size()));
  const ColumnCounts uniq = nunique(t);
  const ColumnCounts nulls = isnull_sum(t);
  // pandas puts the missing cells of an int column past int64 back as text ("" or "NA")
  // and counts them; galvani keeps them missing (see eda.hpp).
  const std::set<std::string> pandas_quirk = {"past_int64_with_missing"};
  for (int64_t c = 0; c < t.cols(); ++c) {
    const std::string& name = t.names()[size_t(c)];
    REQUIRE(ref["columns"].contains(name));
    const auto& want = ref["columns"][name];
    INFO(name << ": cells " << want["cells"].dump() << ", pandas " << want["dtype"].get<std::string>());
    const Column& col = t.column(c);
    std::string want_dtype = want["dtype"].get<std::string>();
    if (want_dtype == "str") want_dtype = "object";  // pandas 3's name for a text column; galvani says object, as pandas 2
    CHECK(dtype(col) == want_dtype);
    if (pandas_quirk.count(name)) {
      CHECK(non_null(col) == 2);
      continue;
    }
    CHECK(non_null(col) == want["non_null"].get<int64_t>());
    CHECK(nulls[size_t(c)].second == t.rows() - want["non_null"].get<int64_t>());
    CHECK(uniq[size_t(c)].second == want["nunique"].get<int64_t>());
    for (size_t r = 0; r < col.size(); ++r) CHECK(col[r].has_value() == !want["values"][r].is_null());
    if (want.contains("describe")) {
      REQUIRE(is_numeric_dtype(dtype(col)));
      Describe d = describe(col, name);
      const auto& w = want["describe"];
      auto num = [](const nlohmann::json& v) -> double {
        if (v.is_null()) return std::nan("");
        if (v.is_string()) return v.get<std::string>() == "inf" ? INFINITY : -INFINITY;
        return v.get<double>();
      };
      CHECK(double(d.count) == num(w["count"]));
      const std::pair<double, const char*> stats[] = {{d.mean, "mean"}, {d.std, "std"}, {d.min, "min"},
                                                      {d.q25, "25%"},   {d.q50, "50%"}, {d.q75, "75%"},
                                                      {d.max, "max"}};
      for (const auto& [got, key] : stats) {
        INFO(key);
        const double x = num(w[key]);
        if (name == "int64_min" && std::string(key) == "25%") {
          // numpy interpolates an int64 column in int64: 1 - INT64_MIN wraps, and pandas
          // reports +4.6e18, above its own median. galvani interpolates in double.
          CHECK(got == -4611686018427387904.0);
          continue;
        }
        if (std::isnan(x)) CHECK(std::isnan(got));
        else if (std::isinf(x)) CHECK(got == x);
        else CHECK_THAT(got, WithinRel(x, 1e-12) || Catch::Matchers::WithinAbs(x, 1e-12));
      }
    } else {
      CHECK_FALSE(is_numeric_dtype(dtype(col)));
      CHECK_THROWS_WITH(numbers(col, name), Catch::Contains("not numeric"));
    }
  }
}

TEST_CASE("read_csv: pandas' NA spellings are missing values, in data rows only", "[data][csv][dtypes]") {
  Table t = parse_csv("NA,b\nnull,\"NA\"\n NA,None\n");
  CHECK(t.names() == std::vector<std::string>{"NA", "b"});  // a header is a name, never NaN
  CHECK_FALSE(t.column(0)[0].has_value());
  CHECK_FALSE(t.column(1)[0].has_value());  // quoted too, as pandas
  CHECK(*t.column(0)[1] == " NA");          // matched exactly
  CHECK_FALSE(t.column(1)[1].has_value());
  CsvOptions keep;
  keep.keep_default_na = false;  // pd.read_csv(keep_default_na=False)
  Table u = parse_csv("a\nNA\n", "<csv>", keep);
  CHECK(*u.column(0)[0] == "NA");
}

TEST_CASE("describe_text() is df.describe() of a text column", "[data][eda]") {
  Column c{Cell{"a"}, Cell{"b"}, Cell{}, Cell{"b"}, Cell{"a"}, Cell{"c"}};
  TextDescribe d = describe_text(c);
  CHECK(d.count == 5);
  CHECK(d.unique == 3);
  CHECK(d.top == "a");  // a tie: the first seen wins
  CHECK(d.freq == 2);
}

TEST_CASE("format_describe prints like pandas", "[data][eda]") {
  std::vector<double> v{3, 1, 4, 1, 5, 9, 2, 6};
  CHECK(format_describe(describe(xt::adapt(v, {8})), "text") ==
        "count    8.000000\n"
        "mean     3.875000\n"
        "std      2.748376\n"
        "min      1.000000\n"
        "25%      1.750000\n"
        "50%      3.500000\n"
        "75%      5.250000\n"
        "max      9.000000\n"
        "Name: text, dtype: float64\n");
}

TEST_CASE("sample() is seeded, distinct and within range", "[data][eda]") {
  auto a = sample_indices(100, 10, 7), b = sample_indices(100, 10, 7), c = sample_indices(100, 10, 8);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == 10);
  for (int64_t i : a) CHECK((i >= 0 && i < 100));
  CHECK_THROWS_AS(sample_indices(3, 4, 1), Error);
  Table t = Table::from_column("text", {"x", "y", "z"});
  CHECK(sample(t, 1, 42).rows() == 1);
}

TEST_CASE("nice_ticks picks 1-2-5 steps that cover the range", "[data][svg]") {
  auto t = svg::nice_ticks(734, 1280);
  CHECK(t.step == 100);
  CHECK(t.lo == 700);
  CHECK(t.hi == 1300);
  CHECK(t.at.size() == 7);
  auto u = svg::nice_ticks(0.013, 0.27);
  CHECK_THAT(u.step, WithinRel(0.05, 1e-12));
  CHECK(svg::tick_label(0.15, u.step) == "0.15");
  CHECK(svg::tick_label(1200, 100) == "1200");
}

TEST_CASE("SVG histogram and line chart carry title, axes, labels and data", "[data][svg]") {
  std::vector<double> v{1, 2, 2, 3, 3, 3, 4};
  HistogramChart h{"Lengths & <counts>", "characters", "rows", make_histogram(xt::adapt(v, {v.size()}), 3)};
  std::string s = to_svg(h);
  CHECK(s.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK_THAT(s, Catch::Contains("Lengths &amp; &lt;counts&gt;"));
  CHECK_THAT(s, Catch::Contains(">characters</text>"));
  CHECK_THAT(s, Catch::Contains(">rows</text>"));
  size_t bars = 0;
  for (size_t p = s.find("<rect x="); p != std::string::npos; p = s.find("<rect x=", p + 1)) ++bars;
  CHECK(bars == 3);
  CHECK(s.substr(s.size() - 7) == "</svg>\n");

  LineChart c{"Training loss", "step", "loss",
              {{"train", {1, 2, 3, 4}, {3.5, 3.1, NAN, 2.7}}, {"eval", {2, 4}, {3.3, 3.0}}}};
  std::string l = to_svg(c);
  CHECK_THAT(l, Catch::Contains(">Training loss</text>"));
  CHECK_THAT(l, Catch::Contains(">train</text>"));  // legend for two series
  CHECK_THAT(l, Catch::Contains(">eval</text>"));
  size_t paths = 0;
  for (size_t p = l.find("<path "); p != std::string::npos; p = l.find("<path ", p + 1)) ++paths;
  CHECK(paths == 2);
  // The NaN breaks the train line: a second "M" in its path.
  std::string first = l.substr(l.find("<path "), l.find("/>", l.find("<path ")) - l.find("<path "));
  CHECK(std::count(first.begin(), first.end(), 'M') == 2);

  LineChart bad{"x", "x", "y", {{"s", {1, 2}, {1}}}};
  CHECK_THROWS_WITH(to_svg(bad), Catch::Contains("series 's' has 2 x values but 1 y values"));

  fs::path out = fs::temp_directory_path() / "galvani_test_data_eda" / "sub" / "h.svg";
  save_svg(out, s);
  CHECK(fs::file_size(out) == s.size());
}
