// fmd::ProgressLine: when it prints off a terminal, and what the line says.
#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <fmd/core/progress.hpp>

namespace progress_test {

std::string read_all(std::FILE* f) {
    std::rewind(f);
    std::string text;
    for (int ch; (ch = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(ch));
    return text;
}

}  // namespace progress_test

TEST_CASE("ProgressLine: plain lines every `every` units off a terminal, quiet with every = 0", "[core][progress]") {
    using progress_test::read_all;
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    {
        fmd::ProgressLine line("pairs", 10, 4, "points", log);
        for (int done = 1; done <= 10; ++done) line.update(done, done == 8 ? "note here" : "");
        line.finish();
    }
    const std::string text = read_all(log);
    std::fclose(log);
    INFO(text);
    CHECK(std::count(text.begin(), text.end(), '\n') == 3);  // at 4, 8 and the last unit
    CHECK(text.find("pairs  4/10") != std::string::npos);
    CHECK(text.find("pairs  8/10") != std::string::npos);
    CHECK(text.find("note here") != std::string::npos);
    CHECK(text.find("pairs  10/10") != std::string::npos);
    CHECK(text.find("ETA 0:00:00") != std::string::npos);  // the last line has nothing left
    CHECK(text.find("points/s") != std::string::npos);

    std::FILE* quiet = std::tmpfile();
    REQUIRE(quiet != nullptr);
    fmd::ProgressLine silent("likelihood", 100, 0, "points", quiet);
    for (int done = 1; done <= 100; ++done) silent.update(done);
    silent.finish();
    CHECK(read_all(quiet).empty());
    std::fclose(quiet);
}

TEST_CASE("ProgressLine: slow units are reported in seconds per unit, and the report callback sets the total", "[core][progress]") {
    using progress_test::read_all;
    std::FILE* log = std::tmpfile();
    REQUIRE(log != nullptr);
    fmd::ProgressLine line("sweep", 0, 1, "runs", log);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    line(1, 3);  // one run in about 1.1 s: "1.10 s/runs", ETA about 2 s
    const std::string text = read_all(log);
    std::fclose(log);
    INFO(text);
    CHECK(text.find("sweep  1/3") != std::string::npos);
    CHECK(text.find(" s/runs") != std::string::npos);
    CHECK(text.find("ETA 0:00:02") != std::string::npos);
    CHECK(fmd::ProgressLine::clock_time(3725.4) == "1:02:05");
}
