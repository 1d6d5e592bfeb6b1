#pragma once
// Tiny --flag value parser for the examples.
#include <cstdlib>
#include <iostream>
#include <map>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

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
    /// One of `options`; anything else fails naming the flag.
    std::string choice(const std::string& k, const std::string& def, std::initializer_list<std::string> options) {
        const std::string v = str(k, def);
        std::string list;
        for (const auto& o : options) {
            if (o == v) return v;
            list += (list.empty() ? "" : ", ") + o;
        }
        fail("--" + k + " must be one of " + list + ", got '" + v + "'");
    }
    /// A comma-separated list of numbers, e.g. --sigmas 0.25,0.5,1.
    std::vector<double> reals(const std::string& k, const std::string& def) {
        std::vector<double> v;
        std::stringstream in(str(k, def));
        for (std::string item; std::getline(in, item, ',');) v.push_back(std::stod(item));
        return v;
    }
    /// Rejects flags nobody asked for (typos).
    void finish() const {
        for (const auto& [k, v] : values_)
            if (!used_.count(k)) fail("unknown flag --" + k);
    }

    /// Reports a bad command line (also for checks across flags) and exits with status 2.
    [[noreturn]] static void fail(const std::string& msg) {
        std::cerr << "error: " << msg << " (see --help)\n";
        std::exit(2);
    }

private:
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> used_;
    bool help_ = false;
};

}  // namespace cli
