// core/file.hpp through the checkpoint writer: a planted symlink is never followed, concurrent
// writers never leave a torn file, a writer killed at random moments (SIGKILL, many times)
// always leaves a loadable checkpoint equal to one of the states it saved, and a failed write
// leaves neither the target nor a temporary file behind.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fmd/train/checkpoint.hpp>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
namespace train = fmd::train;
using fmd_test::names;
using fmd_test::read_bytes;
using fmd_test::TempDir;
using fmd_test::write_bytes;

/// A checkpoint whose every field is a function of k, so a loaded file tells which save it came from.
train::Checkpoint<double> state(std::uint64_t k, Eigen::Index n = 20000) {
    train::Checkpoint<double> c;
    c.architecture = "test network";
    c.optimizer = "test optimizer";
    c.parameters = fmd::Vector<double>::LinSpaced(n, 0.0, 1.0) * static_cast<double>(k);
    c.optimizer_state = {fmd::Vector<double>::Constant(n, static_cast<double>(k) + 0.5)};
    c.optimizer_step = k;
    c.step = k;
    c.rng_state = "rng " + std::to_string(k);
    return c;
}
bool is_state(const train::Checkpoint<double>& c, std::uint64_t k) {
    const auto want = state(k, c.parameters.size());
    return c.step == k && c.optimizer_step == k && c.architecture == want.architecture && c.optimizer == want.optimizer &&
           c.parameters == want.parameters && c.optimizer_state.size() == 1 && c.optimizer_state[0] == want.optimizer_state[0] &&
           c.rng_state == want.rng_state;
}
/// Files in the directory other than `keep`.
std::vector<std::string> others(const std::string& dir, const std::string& keep) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename() != keep) out.push_back(e.path().filename().string());
    return out;
}

}  // namespace

TEST_CASE("write_file_atomic: a symlink planted at any temporary name is never followed", "[core][files]") {
    TempDir tmp;
    const std::string path = tmp.file("model.ckpt"), victim = tmp.file("victim.txt");
    write_bytes(victim, {'k', 'e', 'e', 'p'});
    // The name the writer used before, and a spread of names a guesser might plant.
    fs::create_symlink(victim, path + ".tmp");
    fs::create_symlink(victim, tmp.file(".model.ckpt.tmp"));
    train::save_checkpoint(path, state(3));
    CHECK(read_bytes(victim) == std::vector<char>{'k', 'e', 'e', 'p'});
    CHECK(is_state(train::load_checkpoint<double>(path), 3));
    CHECK_FALSE(fs::is_symlink(path));

    SECTION("a symlink at the target itself is replaced, its target left alone") {
        fs::remove(path);
        fs::create_symlink(victim, path);
        train::save_checkpoint(path, state(4));
        CHECK_FALSE(fs::is_symlink(path));
        CHECK(read_bytes(victim) == std::vector<char>{'k', 'e', 'e', 'p'});
        CHECK(is_state(train::load_checkpoint<double>(path), 4));
    }
}

TEST_CASE("write_file_atomic: new files get 0666 & ~umask, rewritten files keep their mode", "[core][files]") {
    TempDir tmp;
    const std::string path = tmp.file("m.ckpt");
    const mode_t old = ::umask(027);
    train::save_checkpoint(path, state(1, 10));
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    REQUIRE(::chmod(path.c_str(), 0604) == 0);
    train::save_checkpoint(path, state(2, 10));
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0604);
}

TEST_CASE("write_file_atomic: a failed write leaves the old file and no temporary file", "[core][files]") {
    TempDir tmp;
    const std::string path = tmp.file("m.ckpt");
    train::save_checkpoint(path, state(5, 100));
    // A non-finite checkpoint is refused before anything is written.
    auto bad = state(6, 100);
    bad.parameters(17) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(train::save_checkpoint(path, bad), fmd::numerical_error);
    CHECK_THROWS_MATCHES(train::save_checkpoint(path, bad), fmd::error, names("checkpoint", "non-finite parameters"));
    bad = state(6, 100);
    bad.optimizer_state[0](3) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_MATCHES(train::save_checkpoint(path, bad), fmd::error, names("checkpoint", "non-finite optimizer state"));
    CHECK(is_state(train::load_checkpoint<double>(path), 5));
    CHECK(others(tmp.file(""), "m.ckpt").empty());
    // A directory that does not exist: an io_error naming 'path', nothing created.
    const std::string nowhere = tmp.file("no/such/dir/x.ckpt");
    CHECK_THROWS_AS(train::save_checkpoint(nowhere, state(1, 10)), fmd::io_error);
    CHECK_THROWS_MATCHES(train::save_checkpoint(nowhere, state(1, 10)), fmd::error, names("path", "cannot create a temporary file"));
    CHECK(others(tmp.file(""), "m.ckpt").empty());
    // The target is a directory: the rename fails, the temporary file is removed.
    fs::create_directory(tmp.file("adir"));
    CHECK_THROWS_MATCHES(train::save_checkpoint(tmp.file("adir"), state(1, 10)), fmd::error, names("path", "cannot rename"));
    const auto left = others(tmp.file(""), "m.ckpt");
    CHECK(left == std::vector<std::string>{"adir"});
}

TEST_CASE("write_file_atomic: concurrent writers to one path never leave a torn file", "[core][files]") {
    TempDir tmp;
    const std::string path = tmp.file("shared.ckpt");
    train::save_checkpoint(path, state(0));
    std::atomic<bool> stop{false};
    std::atomic<long> loads{0}, bad_loads{0};
    std::vector<std::thread> writers;
    for (std::uint64_t w = 1; w <= 3; ++w)
        writers.emplace_back([&, w] {
            for (std::uint64_t i = 0; i < 25; ++i) train::save_checkpoint(path, state(w * 100 + i));
        });
    std::thread reader([&] {
        while (!stop) {
            try {
                const auto c = train::load_checkpoint<double>(path);
                const std::uint64_t k = c.step;
                if (!is_state(c, k) || (k != 0 && (k / 100 < 1 || k / 100 > 3 || k % 100 >= 25))) ++bad_loads;
            } catch (const fmd::error&) {
                ++bad_loads;
            }
            ++loads;
        }
    });
    for (auto& t : writers) t.join();
    stop = true;
    reader.join();
    CHECK(loads > 0);
    CHECK(bad_loads == 0);
    const auto last = train::load_checkpoint<double>(path);
    CHECK((last.step % 100 == 24));  // some writer's last save won
    CHECK(others(tmp.file(""), "shared.ckpt").empty());
}

TEST_CASE("save_checkpoint killed at random moments (SIGKILL) always leaves a loadable saved state", "[core][files]") {
    TempDir tmp;
    const std::string path = tmp.file("killed.ckpt");
    train::save_checkpoint(path, state(1));
    std::mt19937 gen(12345);
    std::uniform_int_distribution<int> delay_us(0, 4000);
    std::uint64_t latest = 1;
    int kills = 0;
    for (int round = 0; round < 40; ++round) {
        const std::uint64_t base = (round + 1) * 1000;
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {  // saves states base, base + 1, … until killed
            for (std::uint64_t k = base;; ++k) train::save_checkpoint(path, state(k));
        }
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(gen)));
        ::kill(child, SIGKILL);
        int status = 0;
        ::waitpid(child, &status, 0);
        kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        train::Checkpoint<double> c;
        REQUIRE_NOTHROW(c = train::load_checkpoint<double>(path));
        INFO("round " << round << ", step " << c.step);
        CHECK(is_state(c, c.step));
        // The previous round's state or one this child saved: never older, never invented.
        CHECK((c.step == latest || (c.step >= base && c.step < base + 1000000)));
        latest = c.step;
    }
    CHECK(kills == 40);
    // Killed writers may leave their temporary file behind, never a partial target: every
    // leftover is a hidden ".killed.ckpt.tmp.*" name.
    for (const auto& name : others(tmp.file(""), "killed.ckpt")) CHECK(name.rfind(".killed.ckpt.tmp.", 0) == 0);
}
