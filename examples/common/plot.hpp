#pragma once
// Minimal raster plots for the examples: scatter panels, polylines, text labels, PNG output
// through stb (Debian's libstb-dev). Not part of the library; copy and adapt freely.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <Eigen/Core>

namespace plot {

using Color = std::array<std::uint8_t, 3>;
inline constexpr Color black{0, 0, 0}, blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44},
    red{214, 39, 40}, purple{148, 103, 189}, gray{150, 150, 150};

/// An RGB image with a data window [x0, x1] × [y0, y1] mapped onto it.
class Canvas {
public:
    Canvas(int width, int height, double x0 = -1, double x1 = 1, double y0 = -1, double y1 = 1)
        : w_(width), h_(height), px_(static_cast<std::size_t>(width * height * 3), 255) { window(x0, x1, y0, y1); }

    int width() const { return w_; }
    int height() const { return h_; }
    void window(double x0, double x1, double y0, double y1) { x0_ = x0, x1_ = x1, y0_ = y0, y1_ = y1; }

    void set(int i, int j, Color c, double alpha = 1.0) {
        if (i < 0 || j < 0 || i >= w_ || j >= h_) return;
        auto* p = &px_[static_cast<std::size_t>((j * w_ + i) * 3)];
        for (int k = 0; k < 3; ++k) p[k] = static_cast<std::uint8_t>(std::lround((1 - alpha) * p[k] + alpha * c[static_cast<std::size_t>(k)]));
    }
    double col(double x) const { return (x - x0_) / (x1_ - x0_) * (w_ - 1); }
    double row(double y) const { return (y1_ - y) / (y1_ - y0_) * (h_ - 1); }

    /// A dot of the given radius (pixels) at data point (x, y).
    void dot(double x, double y, Color c, double radius = 1.2, double alpha = 0.6) {
        const double ci = col(x), cj = row(y);
        const int r = static_cast<int>(std::ceil(radius));
        for (int dj = -r; dj <= r; ++dj)
            for (int di = -r; di <= r; ++di)
                if (di * di + dj * dj <= radius * radius) set(static_cast<int>(std::lround(ci)) + di, static_cast<int>(std::lround(cj)) + dj, c, alpha);
    }
    /// Every column of a 2 x n matrix as a dot.
    template <class M>
    void scatter(const M& pts, Color c, double radius = 1.2, double alpha = 0.5) {
        for (Eigen::Index j = 0; j < pts.cols(); ++j) dot(static_cast<double>(pts(0, j)), static_cast<double>(pts(1, j)), c, radius, alpha);
    }
    /// A straight segment between data points.
    void line(double xa, double ya, double xb, double yb, Color c, double alpha = 1.0) {
        const double ia = col(xa), ja = row(ya), ib = col(xb), jb = row(yb);
        const int n = static_cast<int>(std::max(std::abs(ib - ia), std::abs(jb - ja))) + 1;
        for (int k = 0; k <= n; ++k) {
            const double s = static_cast<double>(k) / n;
            set(static_cast<int>(std::lround(ia + s * (ib - ia))), static_cast<int>(std::lround(ja + s * (jb - ja))), c, alpha);
        }
    }
    /// Text at pixel position (i, j), scaled by an integer factor (stb_easy_font glyphs).
    void text(int i, int j, const std::string& s, Color c = black, int scale = 2) {
        std::vector<char> buf(s.begin(), s.end());
        buf.push_back('\0');
        std::vector<float> quads(s.size() * 270 + 64);  // 16 bytes per vertex, 4 vertices per quad
        unsigned char rgba[4] = {0, 0, 0, 255};
        const int nq = stb_easy_font_print(0, 0, buf.data(), rgba, quads.data(), static_cast<int>(quads.size() * sizeof(float)));
        for (int q = 0; q < nq; ++q) {
            const float* v = &quads[static_cast<std::size_t>(q * 16)];
            const int qa = static_cast<int>(v[0]), qb = static_cast<int>(v[1]), qc = static_cast<int>(v[8]), qd = static_cast<int>(v[9]);
            for (int y = qb * scale; y < qd * scale; ++y)
                for (int x = qa * scale; x < qc * scale; ++x) set(i + x, j + y, c);
        }
    }
    void frame(Color c = gray) {
        for (int i = 0; i < w_; ++i) set(i, 0, c), set(i, h_ - 1, c);
        for (int j = 0; j < h_; ++j) set(0, j, c), set(w_ - 1, j, c);
    }
    /// Copies another canvas into this one with its top-left corner at (i, j).
    void paste(const Canvas& o, int i, int j) {
        for (int y = 0; y < o.h_; ++y)
            for (int x = 0; x < o.w_; ++x) {
                const auto* p = &o.px_[static_cast<std::size_t>((y * o.w_ + x) * 3)];
                set(i + x, j + y, Color{p[0], p[1], p[2]});
            }
    }
    /// Writes a PNG, creating the missing directories of `path` (--out DIR need not exist).
    void save(const std::string& path) const {
        if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
        if (!stbi_write_png(path.c_str(), w_, h_, 3, px_.data(), w_ * 3)) throw std::runtime_error("could not write " + path);
    }

private:
    int w_, h_;
    double x0_ = -1, x1_ = 1, y0_ = -1, y1_ = 1;
    std::vector<std::uint8_t> px_;
};

/// Lays out titled panels of equal size in one row or grid and saves them as one PNG.
inline void save_panels(const std::vector<Canvas>& panels, const std::vector<std::string>& titles, int per_row, const std::string& path) {
    if (panels.empty()) return;
    const int pw = panels[0].width(), ph = panels[0].height(), title_h = 28;
    const int rows = (static_cast<int>(panels.size()) + per_row - 1) / per_row;
    Canvas out(per_row * pw, rows * (ph + title_h));
    for (std::size_t k = 0; k < panels.size(); ++k) {
        const int i = static_cast<int>(k) % per_row * pw, j = static_cast<int>(k) / per_row * (ph + title_h);
        out.paste(panels[k], i, j + title_h);
        if (k < titles.size()) out.text(i + 8, j + 6, titles[k]);
    }
    out.save(path);
}

}  // namespace plot
