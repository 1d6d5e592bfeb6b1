#pragma once
// Reader of tests/fixtures/mlp_reference.txt (written by tests/fixtures/make_mlp_reference.py):
// blocks "name rows cols" followed by rows x cols numbers, '#' lines are comments.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include <Eigen/Core>

namespace fmd_test {

inline std::filesystem::path fixture_path(const char* name) {
    return std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / name;
}

inline std::map<std::string, Eigen::MatrixXd> read_reference() {
    const auto path = fixture_path("mlp_reference.txt");
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path.string());
    std::map<std::string, Eigen::MatrixXd> blocks;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream head(line);
        std::string name;
        Eigen::Index rows = 0, cols = 0;
        if (!(head >> name >> rows >> cols)) throw std::runtime_error("bad block header: " + line);
        Eigen::MatrixXd m(rows, cols);
        for (Eigen::Index i = 0; i < rows; ++i)
            for (Eigen::Index j = 0; j < cols; ++j)
                if (!(in >> m(i, j))) throw std::runtime_error("truncated block " + name);
        blocks[name] = m;
    }
    return blocks;
}

}  // namespace fmd_test
