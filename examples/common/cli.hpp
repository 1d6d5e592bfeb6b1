#pragma once
// Tiny --flag value parser for the examples.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

namespace cli {

class Args {
public:
    Args(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "'");
            a = a.substr(2);
            if (a == "help") help_ = true;
            else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) values_[a] = argv[++i];
            else values_[a] = std::string(1, '1');  // not = "1": GCC 12 -O3 false -Wrestrict (bug 105651)
        }
    }
    bool help() const { return help_; }
    std::string str(const std::string& k, const std::string& def) { used_[k] = true; auto it = values_.find(k); return it == values_.end() ? def : it->second; }
    long integer(const std::string& k, long def) { return std::stol(str(k, std::to_string(def))); }
    double real(const std::string& k, double def) { return std::stod(str(k, std::to_string(def))); }
    bool flag(const std::string& k) { return str(k, "0") != "0"; }
    /// Rejects flags nobody asked for (typos).
    void finish() const {
        for (const auto& [k, v] : values_)
            if (!used_.count(k)) fail("unknown flag --" + k);
    }

private:
    [[noreturn]] static void fail(const std::string& msg) {
        std::cerr << "error: " << msg << " (see --help)\n";
        std::exit(2);
    }
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> used_;
    bool help_ = false;
};

}  // namespace cli
