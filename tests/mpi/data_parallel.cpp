// Data-parallel training over MPI (train/mpi.hpp), run under `mpirun -np 2`: 2 ranks on a fixed
// global batch give 1 rank's parameters up to the reduction order; a resumed 2-rank run continues
// bit-identically; the ranks never diverge; checkpoint and load errors reach every rank.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmd/fmd.hpp>
#include <fmd/train/mpi.hpp>

namespace mpi_test {

using fmd::Matrix;
using fmd::Row;
using Net = fmd::nn::MLP<double>;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;

/// Times read from a table the test fills per step, from column `offset` on (so a rank takes its
/// slice of the global batch's times): a time sampler the library did not write.
struct TableTimes {
    const Row<double>* table;
    Eigen::Index offset;
    void operator()(Row<double>& t, fmd::Rng&) const { t = table->segment(offset, t.size()); }
};

constexpr fmd::nn::MLPConfig config{.dim = 2, .width = 32, .depth = 2, .activation = fmd::nn::Activation::silu};

/// Rank 0's parameters on every rank, for comparisons.
fmd::Vector<double> from_root(const fmd::Vector<double>& p) {
    fmd::Vector<double> q = p;
    MPI_Bcast(q.data(), static_cast<int>(q.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return q;
}

/// A path in the temporary directory, named on rank 0 (its pid) and the same on every rank.
std::string temp_path(const std::string& name) {
    std::string path;
    if (fmd::mpi::is_root()) path = (std::filesystem::temp_directory_path() / ("fmd_mpi_test_" + std::to_string(::getpid()) + "_" + name)).string();
    const auto bytes = fmd::mpi::detail::broadcast_bytes(std::vector<char>(path.begin(), path.end()), {}, 0, MPI_COMM_WORLD);
    return {bytes.begin(), bytes.end()};
}

TEST_CASE("2 ranks on a fixed global batch give the 1-rank parameters up to reduction order", "[mpi]") {
    const int ranks = fmd::mpi::size(), me = fmd::mpi::rank();
    REQUIRE(ranks == 2);
    const Eigen::Index global = 64, local = global / ranks;
    Row<double> times(global);
    fmd::Rng init(3);
    Net single(config, init);
    Net parallel_net = single;
    fmd::nn::AdamW<double> opt1(single.parameter_count(), {.lr = 3e-3}), opt2(parallel_net.parameter_count(), {.lr = 3e-3});
    fmd::train::Trainer reference(Path{}, fmd::loss::cfm, single, opt1, {.batch_size = global, .ema_decay = 0.99, .clip_norm = 1.0},
                                  TableTimes{&times, 0});
    fmd::train::Trainer trainer(Path{}, fmd::loss::cfm, parallel_net, opt2, {.batch_size = local, .ema_decay = 0.99, .clip_norm = 1.0},
                                TableTimes{&times, me * local});
    fmd::mpi::DataParallel parallel(trainer);
    // The same global batches on every rank: one shared generator.
    fmd::Rng data(11), unused(0);
    const fmd::data::Checkerboard board;
    Matrix<double> z(2, global), eps(2, global);
    double loss_gap = 0;
    for (int step = 0; step < 300; ++step) {
        board.sample(z, data);
        fmd::fill_normal(eps, data);
        for (Eigen::Index j = 0; j < global; ++j) times(j) = fmd::uniform01(data);
        const double l1 = reference.step_on_pairs(z, eps, unused);
        const double l2 = trainer.step_on_pairs(z.middleCols(me * local, local), eps.middleCols(me * local, local), unused);
        loss_gap = std::max(loss_gap, std::abs(l1 - l2) / l1);  // the reported loss is the global mean
    }
    const double rel = (single.parameters() - parallel_net.parameters()).norm() / single.parameters().norm();
    const double ema_rel = (reference.ema() - trainer.ema()).norm() / reference.ema().norm();
    INFO("300 AdamW steps, clipping and EMA: parameter difference " << rel << ", EMA " << ema_rel << ", loss " << loss_gap);
    // The sums differ only in order (two half-batch GEMMs plus one addition against one GEMM):
    // ~1e-16 per step, amplified by Adam's normalization over 300 steps; 1e-9 leaves room for that
    // and fails for any real difference (a missed ÷ ranks changes the first step by 1e-3).
    CHECK(rel < 1e-9);
    CHECK(ema_rel < 1e-9);
    CHECK(loss_gap < 1e-12);
    CHECK(parallel.allreduces() == 300);
    // Both ranks hold bit-identical weights.
    CHECK(from_root(parallel_net.parameters()) == parallel_net.parameters());
}

TEST_CASE("a resumed 2-rank run continues bit-identically; rank 0's state reaches every rank", "[mpi]") {
    const fmd::data::Checkerboard board;
    const std::string path = temp_path("resume.ckpt");
    auto make = [](std::uint64_t init_seed) { return Net(config, init_seed + static_cast<std::uint64_t>(fmd::mpi::rank())); };
    // Uninterrupted: 60 steps. Every rank built its network from a different seed: the constructor
    // broadcasts rank 0's.
    Net a = make(5);
    fmd::nn::AdamW<double> opt_a(a.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer ta(Path{}, fmd::loss::cfm, a, opt_a, {.batch_size = 16, .ema_decay = 0.9});
    fmd::mpi::DataParallel pa(ta);
    CHECK(from_root(a.parameters()) == a.parameters());
    fmd::Rng ra = fmd::mpi::rank_rng(42);
    for (int i = 0; i < 60; ++i) ta.train_step(board, ra);

    // Interrupted after 25 steps, saved, restored into fresh objects, 35 more.
    Net b = make(5);
    fmd::nn::AdamW<double> opt_b(b.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer tb(Path{}, fmd::loss::cfm, b, opt_b, {.batch_size = 16, .ema_decay = 0.9});
    fmd::mpi::DataParallel pb(tb);
    fmd::Rng rb = fmd::mpi::rank_rng(42);
    for (int i = 0; i < 25; ++i) tb.train_step(board, rb);
    pb.save(path, rb);
    Net c = make(99);
    fmd::nn::AdamW<double> opt_c(c.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer tc(Path{}, fmd::loss::cfm, c, opt_c, {.batch_size = 16, .ema_decay = 0.9});
    fmd::mpi::DataParallel pc(tc);
    fmd::Rng rc(0);
    pc.load(path, rc);
    CHECK(tc.step() == 25);
    for (int i = 0; i < 35; ++i) tc.train_step(board, rc);
    CHECK(c.parameters() == a.parameters());
    CHECK(tc.ema() == ta.ema());
    CHECK(rc == ra);  // each rank got its own generator back
    if (fmd::mpi::is_root()) std::filesystem::remove(path);
}

TEST_CASE("objectives, couplings and labels train data-parallel with ranks in lockstep", "[mpi]") {
    const fmd::data::Checkerboard board;
    {  // MeanFlow: forward, tangent and backward per rank, one allreduce
        Net net({.dim = 2, .width = 16, .depth = 1, .activation = fmd::nn::Activation::silu, .two_times = true}, 3);
        fmd::nn::AdamW<double> opt(net.parameter_count());
        fmd::train::Trainer trainer(Path{}, fmd::flowmap::MeanFlow<double>({.fraction_unequal = 0.5}), net, opt, {.batch_size = 16, .clip_norm = 1.0});
        fmd::mpi::DataParallel parallel(trainer);
        fmd::Rng rng = fmd::mpi::rank_rng(8);
        for (int i = 0; i < 20; ++i) trainer.train_step(board, rng);
        CHECK(from_root(net.parameters()) == net.parameters());
    }
    {  // exact OT within each rank's batch, labelled data with dropout
        Matrix<double> points(2, 200);
        std::vector<int> labels(200);
        fmd::Rng data(2);
        board.sample(points, data);
        for (int j = 0; j < 200; ++j) labels[static_cast<std::size_t>(j)] = points(0, j) > 0 ? 1 : 0;
        const fmd::data::LabelledDataset<double> set(points, labels);
        Net net({.dim = 2, .width = 16, .depth = 1, .num_classes = 2}, 4);
        fmd::nn::AdamW<double> opt(net.parameter_count());
        fmd::train::Trainer trainer(Path{}, fmd::loss::cfm, net, opt, {.batch_size = 16}, fmd::time_sampler::Uniform{},
                                    fmd::coupling::ExactOT<double>{});
        fmd::mpi::DataParallel parallel(trainer);
        fmd::Rng rng = fmd::mpi::rank_rng(9);
        for (int i = 0; i < 20; ++i) trainer.train_step(set, rng);
        CHECK(from_root(net.parameters()) == net.parameters());
        CHECK(trainer.step() == 20);
    }
}

TEST_CASE("checkpoint errors reach every rank", "[mpi]") {
    Net net(config, 1);
    fmd::nn::AdamW<double> opt(net.parameter_count());
    fmd::train::Trainer trainer(Path{}, fmd::loss::cfm, net, opt, {.batch_size = 8});
    fmd::mpi::DataParallel parallel(trainer);
    fmd::Rng rng = fmd::mpi::rank_rng(1);
    // Only rank 0 reads: a missing file is every rank's error.
    CHECK_THROWS_AS(parallel.load("/nonexistent/fmd.ckpt", rng), fmd::io_error);
    // A plain (one-process) checkpoint has no per-rank generator states.
    fmd::train::Checkpoint<double> plain = trainer.checkpoint(rng);
    CHECK_THROWS_WITH(parallel.restore(plain, rng), Catch::Contains("'checkpoint'") && Catch::Contains("mpi::DataParallel"));
    // A directory that cannot hold the file: the save fails on rank 0 and throws on every rank.
    CHECK_THROWS_AS(parallel.save("/nonexistent/dir/fmd.ckpt", rng), fmd::io_error);
}

}  // namespace mpi_test

int main(int argc, char** argv) {
    fmd::mpi::Session session(argc, argv);
    int failed = Catch::Session().run(argc, argv);
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return failed == 0 ? 0 : 1;
}
