// data/svg_plot.hpp — small, readable SVG charts a person can open in any
// browser: a histogram (EDA's length distributions) and a line chart (the
// trainer's loss curves). Both have a title, axes with "nice" ticks (steps of
// 1, 2 or 5 times a power of ten), tick labels and axis labels.
//
//   HistogramChart h{"Characters per snippet", "characters", "rows", make_histogram(lengths, 20)};
//   save_svg("runs/step1/char_lengths.svg", to_svg(h));
//
//   LineChart c{"Training loss", "step", "loss", {{"train", steps, losses}, {"eval", esteps, elosses}}};
//   save_svg("runs/train/loss.svg", to_svg(c));
//
// Coordinates: the plot area is the rectangle [left, left + w] x [top, top + h]
// in SVG pixels; data x grows rightwards, data y upwards (so pixel y is flipped).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <galvani/core/error.hpp>
#include <galvani/data/eda.hpp>

namespace galvani {

struct PlotSize {
  int width = 720, height = 440;
  int left = 72, right = 24, top = 44, bottom = 56;  // margins around the plot area, pixels
};

struct HistogramChart {
  std::string title, xlabel, ylabel = "count";
  Histogram hist;
  PlotSize size{};
};

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped (the line breaks there)
};

struct LineChart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;  // a legend is drawn when there is more than one
  PlotSize size{};
};

namespace svg {

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string num(double v) {  // pixel coordinates, two decimals are plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Tick positions covering [lo, hi] with about `target` steps of 1, 2 or 5 x 10^k.
struct Ticks {
  double lo, hi, step;  // the axis range, widened to whole steps
  std::vector<double> at;
};

inline Ticks nice_ticks(double lo, double hi, int target = 6) {
  if (!(hi > lo)) lo -= 0.5, hi += 0.5;  // one value only: give it room
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  Ticks t{std::floor(lo / step) * step, std::ceil(hi / step) * step, step, {}};
  for (double v = t.lo; v <= t.hi + step * 1e-9; v += step) t.at.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

inline std::string tick_label(double v, double step) {
  const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Draws the frame shared by both charts: title, axes, ticks, grid, labels.
// Returns the mapping from data to pixels.
struct Frame {
  PlotSize s;
  Ticks xt, yt;
  double px(double x) const { return s.left + (x - xt.lo) / (xt.hi - xt.lo) * (s.width - s.left - s.right); }
  double py(double y) const { return s.top + (yt.hi - y) / (yt.hi - yt.lo) * (s.height - s.top - s.bottom); }
};

inline std::string open_frame(const Frame& f, const std::string& title, const std::string& xlabel,
                              const std::string& ylabel) {
  const PlotSize& s = f.s;
  const double x0 = s.left, x1 = s.width - s.right, y0 = s.top, y1 = s.height - s.bottom;
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(s.width) + "\" height=\"" +
       std::to_string(s.height) + "\" viewBox=\"0 0 " + std::to_string(s.width) + " " + std::to_string(s.height) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">" + escape(title) +
       "</text>\n";
  o += "<g stroke=\"#e5e5e5\">\n";  // grid lines at the y ticks
  for (double v : f.yt.at) o += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(f.py(v)) + "\" y2=\"" + num(f.py(v)) + "\"/>\n";
  o += "</g>\n<g stroke=\"black\">\n";
  o += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" y2=\"" + num(y1) + "\"/>\n";
  o += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" y2=\"" + num(y1) + "\"/>\n";
  for (double v : f.xt.at) o += "<line x1=\"" + num(f.px(v)) + "\" x2=\"" + num(f.px(v)) + "\" y1=\"" + num(y1) + "\" y2=\"" + num(y1 + 5) + "\"/>\n";
  for (double v : f.yt.at) o += "<line x1=\"" + num(x0 - 5) + "\" x2=\"" + num(x0) + "\" y1=\"" + num(f.py(v)) + "\" y2=\"" + num(f.py(v)) + "\"/>\n";
  o += "</g>\n<g fill=\"black\">\n";
  for (double v : f.xt.at)
    o += "<text x=\"" + num(f.px(v)) + "\" y=\"" + num(y1 + 18) + "\" text-anchor=\"middle\">" + tick_label(v, f.xt.step) + "</text>\n";
  for (double v : f.yt.at)
    o += "<text x=\"" + num(x0 - 8) + "\" y=\"" + num(f.py(v) + 4) + "\" text-anchor=\"end\">" + tick_label(v, f.yt.step) + "</text>\n";
  o += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(s.height - 14) + "\" text-anchor=\"middle\">" + escape(xlabel) + "</text>\n";
  o += "<text transform=\"translate(18 " + num((y0 + y1) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + escape(ylabel) + "</text>\n";
  return o + "</g>\n";
}

inline const char* color(size_t i) {  // matplotlib's first colours, so plots look familiar
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
  return palette[i % 6];
}

}  // namespace svg

inline std::string to_svg(const HistogramChart& c) {
  const Histogram& h = c.hist;
  GALVANI_CHECK(!h.counts.empty() && h.edges.size() == h.counts.size() + 1,
                "to_svg(HistogramChart): expected bins + 1 edges, got ", h.edges.size(), " edges for ",
                h.counts.size(), " bins");
  const double top = *std::max_element(h.counts.begin(), h.counts.end());
  svg::Frame f{c.size, svg::nice_ticks(h.edges.front(), h.edges.back()), svg::nice_ticks(0, std::max(top, 1.0))};
  std::string o = svg::open_frame(f, c.title, c.xlabel, c.ylabel);
  o += "<g fill=\"" + std::string(svg::color(0)) + "\" stroke=\"white\" stroke-width=\"0.5\">\n";
  for (size_t i = 0; i < h.counts.size(); ++i) {
    const double x = f.px(h.edges[i]), w = f.px(h.edges[i + 1]) - x, y = f.py(h.counts[i]);
    o += "<rect x=\"" + svg::num(x) + "\" y=\"" + svg::num(y) + "\" width=\"" + svg::num(w) + "\" height=\"" +
         svg::num(f.py(0) - y) + "\"><title>" + svg::tick_label(h.edges[i], 0.01) + " – " +
         svg::tick_label(h.edges[i + 1], 0.01) + ": " + svg::tick_label(h.counts[i], 1) + "</title></rect>\n";
  }
  return o + "</g>\n</svg>\n";
}

inline std::string to_svg(const LineChart& c) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Series& s : c.series) {
    GALVANI_CHECK(s.x.size() == s.y.size(), "to_svg(LineChart): series '", s.name, "' has ", s.x.size(),
                  " x values but ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        xlo = std::min(xlo, s.x[i]), xhi = std::max(xhi, s.x[i]), ylo = std::min(ylo, s.y[i]), yhi = std::max(yhi, s.y[i]);
  }
  if (!(xlo <= xhi)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;  // nothing to draw: an empty frame
  svg::Frame f{c.size, svg::nice_ticks(xlo, xhi), svg::nice_ticks(ylo, yhi)};
  std::string o = svg::open_frame(f, c.title, c.xlabel, c.ylabel);
  for (size_t k = 0; k < c.series.size(); ++k) {
    const Series& s = c.series[k];
    std::string d;  // the path: M at the start and after every skipped point, L otherwise
    bool pen_down = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) { pen_down = false; continue; }
      d += (pen_down ? " L" : " M") + svg::num(f.px(s.x[i])) + " " + svg::num(f.py(s.y[i]));
      pen_down = true;
    }
    o += "<path fill=\"none\" stroke=\"" + std::string(svg::color(k)) + "\" stroke-width=\"1.5\" d=\"" + d + "\"/>\n";
    // A short series (an evaluation per epoch) also gets a dot per point: a single
    // point would otherwise draw nothing at all.
    if (s.x.size() <= 50)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          o += "<circle cx=\"" + svg::num(f.px(s.x[i])) + "\" cy=\"" + svg::num(f.py(s.y[i])) + "\" r=\"3.5\" fill=\"" +
               svg::color(k) + "\"/>\n";
  }
  if (c.series.size() > 1) {  // legend, top right inside the plot area
    const double x = c.size.width - c.size.right - 130;
    for (size_t k = 0; k < c.series.size(); ++k) {
      const double y = c.size.top + 14 + 18 * double(k);
      o += "<line x1=\"" + svg::num(x) + "\" x2=\"" + svg::num(x + 22) + "\" y1=\"" + svg::num(y) + "\" y2=\"" +
           svg::num(y) + "\" stroke=\"" + svg::color(k) + "\" stroke-width=\"2\"/>\n";
      o += "<text x=\"" + svg::num(x + 28) + "\" y=\"" + svg::num(y + 4) + "\">" + svg::escape(c.series[k].name) + "</text>\n";
    }
  }
  return o + "</svg>\n";
}

inline void save_svg(const std::filesystem::path& path, const std::string& svg_text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  GALVANI_CHECK(out, "save_svg: cannot create '", path.string(), "'; check that the folder is writable");
  out << svg_text;
  GALVANI_CHECK(out, "save_svg: writing '", path.string(), "' failed");
}

}  // namespace galvani
