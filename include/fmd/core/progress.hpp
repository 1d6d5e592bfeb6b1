#pragma once
// One progress line for every long run (training, sampling sweeps, pair generation, likelihoods
// over many points): "label  done/total  rate  ETA h:mm:ss  [note]". On a terminal the line is
// redrawn in place at most five times a second; elsewhere (logs, CI) a plain line is printed
// every `every` units, or nothing when every = 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <fmd/core/terminal.hpp>

namespace fmd {

/// A progress line with rate and ETA (see the header comment for when it prints).
///
///     fmd::ProgressLine progress("pairs", total);
///     for (...) progress.update(done);        // or pass it as a report(done, total) callback
///     progress.finish();
class ProgressLine {
public:
    /// `label` starts the line, `unit` names what is counted ("steps", "points"); `every` is the
    /// interval of plain lines off a terminal (0: quiet there).
    explicit ProgressLine(std::string label, std::int64_t total = 0, std::int64_t every = 0, std::string unit = "", std::FILE* out = stderr)
        : label_(std::move(label)), unit_(std::move(unit)), total_(total), every_(every), out_(out), tty_(detail::is_terminal(out)),
          start_(clock::now()), last_(start_) {}

    /// Sets the count reached; `note` is appended (e.g. "loss 0.0312"). Prints when due.
    void update(std::int64_t done, std::string_view note = {}) {
        first_ = false;
        done_ = done;
        const auto now = clock::now();
        const bool last = total_ > 0 && done >= total_;
        const bool due = tty_ ? (now - last_ > std::chrono::milliseconds(200) || last)
                              : (every_ > 0 && (done % every_ == 0 || last));
        if (!due) return;
        last_ = now;
        print(now, note);
    }

    /// update() as a report(done, total) callback (e.g. train::generate_pairs); sets the total too.
    void operator()(std::int64_t done, std::int64_t total) {
        set_total(total);
        update(done);
    }

    /// Changes the count the run will reach.
    void set_total(std::int64_t total) { total_ = total; }

    /// Measures the rate from `done` units reached now (a resumed run: its earlier units took no time here).
    void restart(std::int64_t done) {
        start_done_ = done_ = done;
        start_ = last_ = clock::now();
    }

    /// Ends the redrawn line on a terminal (nothing elsewhere).
    void finish() {
        if (tty_ && !first_ && !finished_) std::fputc('\n', out_);
        finished_ = true;
    }

    /// "h:mm:ss" of a duration in seconds.
    static std::string clock_time(double seconds) {
        char b[32];
        const long v = std::lround(std::max(0.0, seconds));
        std::snprintf(b, sizeof b, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
        return b;
    }

private:
    using clock = std::chrono::steady_clock;

    void print(clock::time_point now, std::string_view note) {
        const double secs = std::chrono::duration<double>(now - start_).count();
        const double rate = static_cast<double>(done_ - start_done_) / std::max(secs, 1e-9);
        char speed[48];
        const char* unit = unit_.empty() ? "it" : unit_.c_str();
        if (rate >= 1.0 || rate == 0.0)
            std::snprintf(speed, sizeof speed, "%.1f %s/s", rate, unit);
        else
            std::snprintf(speed, sizeof speed, "%.2f s/%s", 1.0 / rate, unit);  // slow steps: seconds per unit, not "0/s"
        const double eta = rate > 0.0 ? static_cast<double>(total_ - done_) / rate : 0.0;
        std::fprintf(out_, "%s%s  %lld/%lld  %s  ETA %s%s%.*s%s", tty_ ? "\r" : "", label_.c_str(), static_cast<long long>(done_),
                     static_cast<long long>(total_), speed, clock_time(eta).c_str(), note.empty() ? "" : "  ", static_cast<int>(note.size()),
                     note.data(), tty_ ? "   " : "\n");
        std::fflush(out_);
    }

    std::string label_, unit_;
    std::int64_t total_, every_;
    std::FILE* out_;
    bool tty_;
    clock::time_point start_, last_;
    std::int64_t done_ = 0, start_done_ = 0;
    bool first_ = true, finished_ = false;
};

}  // namespace fmd
