#pragma once
// Command lines of the examples and benchmarks through CLI11 (Debian's libcli11-dev): options are
// declared with their defaults, --help is generated from them, and every usage error — unknown
// flag, wrong type, value out of range — exits with status 2 after saying which.
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

namespace cli {

/// A CLI11 application whose --help shows every option's default.
class App : public CLI::App {
public:
    explicit App(const std::string& description) : CLI::App(description) { option_defaults()->always_capture_default(); }
};

/// Parses argv into the options declared on `app`: --help prints the generated help and exits 0,
/// a usage error prints it with a hint and exits 2.
inline void parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        std::exit(app.exit(e));
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        std::exit(2);
    }
}

/// Reports a bad combination of flags (checks across options) and exits with status 2.
[[noreturn]] inline void fail(const std::string& msg) {
    std::cerr << "error: " << msg << " (see --help)\n";
    std::exit(2);
}

}  // namespace cli
