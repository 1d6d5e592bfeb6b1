// Writes known arrays with npy.hpp into the directory argv[1]; examples/common/npy_check.py reads
// them back with NumPy and compares (the ctest npy_roundtrip runs both).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "common/npy.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: npy_check DIR\n");
        return 2;
    }
    const std::string dir = std::string(argv[1]) + "/nested/dir";  // missing directories are created
    // Non-square, so a transposed layout cannot pass; values exact in float.
    Eigen::MatrixXf f(3, 5);
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 5; ++c) f(r, c) = static_cast<float>(r * 7 + c) * 0.25f - 1.0f;
    Eigen::MatrixXd d(4, 2);
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 2; ++c) d(r, c) = r + c / 7.0;
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = d;
    npy::save(dir + "/f32.npy", f);
    npy::save(dir + "/f64.npy", d);
    npy::save(dir + "/row_major.npy", row_major);
    npy::save(dir + "/block.npy", f.block(1, 1, 2, 3));  // an expression with strides
    npy::save(dir + "/transposed.npy", d.transpose());
    npy::save(dir + "/vec_f64.npy", std::vector<double>{0.1, -2.5, 1e300, 3.0});
    npy::save(dir + "/vec_f32.npy", std::vector<float>{0.5f, 1.5f});
    npy::save(dir + "/vec_i32.npy", std::vector<std::int32_t>{-1, 0, 7, 2147483647});
    npy::save(dir + "/vec_i64.npy", std::vector<long>{-1L, 1L << 40});
    npy::save(dir + "/empty.npy", std::vector<double>{});
    npy::save(dir + "/stack.npy", std::vector<Eigen::MatrixXf>{f, 2 * f});
    npy::Json info;
    info.add("pi", 3.14159265358979311600).add("n", 42L).add("count", std::size_t{7}).add("flag", true);
    info.add("title", "1 NFE, \"filled\" 0.85\\").add("labels", std::vector<std::string>{"T-shirt", "Boot"});
    info.add("values", std::vector<double>{1.5, -0.25}).add("nfe", std::vector<long>{1, 2, 4});
    info.save(dir + "/info.json");
    try {  // a write error names the path
        npy::save("/proc/npy_check/cannot.npy", f);
        std::fprintf(stderr, "no error for an unwritable path\n");
        return 1;
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).find("/proc/npy_check/cannot.npy") == std::string::npos) {
            std::fprintf(stderr, "error message without the path: %s\n", e.what());
            return 1;
        }
    }
    return 0;
}
