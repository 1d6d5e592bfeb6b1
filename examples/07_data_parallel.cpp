// Example 07: data-parallel training on the checkerboard with MPI (train/mpi.hpp), the same program
// from one process to many:
//
//   build/release/examples/07_data_parallel                                  one process
//   mpirun -np 2 build/release/examples/07_data_parallel                     two ranks on this machine
//   mpirun -np 8 --hostfile hosts build/release/examples/07_data_parallel    across machines (hosts: one
//                                                                           "name slots=N" line per machine)
//
// The global batch (--batch) is split evenly over the ranks; each rank draws its share from its own
// random stream (fmd::mpi::rank_rng), the gradients are averaged by one allreduce per step, and every
// rank takes the same AdamW step. Rank 0 prints progress, writes the checkpoint (--checkpoint FILE,
// resumable with --resume FILE under the same number of ranks) and the samples for the picture
// 07_samples.png (examples/plots/07_data_parallel.py). A rank
// that fails stops the whole job (fmd::mpi::run). Threads: Eigen uses --threads per rank (default:
// the machine's cores divided by the ranks on it, at least 1).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include <fmd/fmd.hpp>
#include <fmd/train/mpi.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

using S = float;

int main(int argc, char** argv) {
    fmd::mpi::Session session(argc, argv);
    return fmd::mpi::run(MPI_COMM_WORLD, [&] {
        const int ranks = fmd::mpi::size();
        const bool root = fmd::mpi::is_root();
        cli::App app("Example 07: data-parallel training on the checkerboard; run it under mpirun -np N");
        std::string out = ".", checkpoint, resume;
        long steps = 4000, batch = 256, width = 256, depth = 3;
        double lr = 1e-3;
        const long cores = std::max(1L, static_cast<long>(std::thread::hardware_concurrency()));
        int threads = static_cast<int>(std::max(1L, cores / ranks));
        std::uint64_t seed = 0;
        app.add_option("--out", out, "directory for the results and the picture drawn from them (rank 0)");
        app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
        app.add_option("--batch", batch, "global batch size, a multiple of the number of ranks")->check(CLI::PositiveNumber);
        app.add_option("--width", width, "MLP width")->check(CLI::PositiveNumber);
        app.add_option("--depth", depth, "hidden blocks")->check(CLI::NonNegativeNumber);
        app.add_option("--lr", lr, "AdamW peak learning rate")->check(CLI::PositiveNumber);
        app.add_option("--threads", threads, "Eigen threads per rank (default: cores / ranks)")->check(CLI::PositiveNumber);
        app.add_option("--checkpoint", checkpoint, "save a checkpoint here at the end (rank 0 writes)");
        app.add_option("--resume", resume, "continue from this checkpoint (same number of ranks)");
        app.add_option("--seed", seed, "random seed");
        cli::parse(app, argc, argv);
        if (batch % ranks != 0) cli::fail("--batch must be a multiple of the number of ranks");
        Eigen::setNbThreads(threads);

        fmd::Rng rng = fmd::mpi::rank_rng(seed);
        fmd::nn::MLP<S> net({.dim = 2, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu, .time = {.scale = 100.0}}, seed);
        fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr});
        fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt, {.batch_size = batch / ranks, .ema_decay = 0.999});
        trainer.set_lr_schedule(fmd::nn::WarmupCosine{.peak_lr = lr, .warmup_steps = steps / 20, .total_steps = steps, .min_lr = lr / 20});
        fmd::mpi::DataParallel parallel(trainer);  // every rank starts from rank 0's weights
        if (!resume.empty()) parallel.load(resume, rng);
        if (root) std::printf("%d rank(s) x %d thread(s), global batch %ld (%ld per rank), %ld steps\n", ranks, threads, batch, batch / ranks, steps);

        const fmd::data::Checkerboard board;
        std::optional<fmd::train::Progress> progress;
        if (root) progress.emplace(std::max(1L, steps / 10));  // the loss shown is the global mean
        const auto start = std::chrono::steady_clock::now();
        const auto taken = static_cast<double>(fmd::train::fit(trainer, board, rng, steps, progress));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!checkpoint.empty()) parallel.save(checkpoint, rng);
        if (!root) return;
        std::printf("%.0f steps in %.1f s: %.2f ms per step, %.0f samples/s; allreduce %.1f %% of the time\n", taken, secs, 1e3 * secs / taken,
                    static_cast<double>(batch) * taken / secs, 100 * parallel.allreduce_seconds() / secs);
        net.parameters() = trainer.ema();
        fmd::Matrix<S> x(2, 2000);
        fmd::Rng noise(1);
        fmd::fill_normal(x, noise);
        fmd::solver::Heun<S> heun;
        fmd::sample(net, x, fmd::grid::uniform(50), heun);
        const double filled = board.filled_fraction(x);
        std::printf("filled-square fraction of 2000 samples (Heun, 100 NFE): %.3f\n", filled);
        const std::string dir = out + "/07_data_parallel";
        npy::save(dir + "/samples.npy", x);
        npy::Json info;
        info.add("ranks", ranks).add("threads", threads).add("steps", static_cast<long>(taken)).add("batch", batch).add("filled", filled);
        info.add("ms_per_step", 1e3 * secs / taken);
        info.save(dir + "/info.json");
        if (!checkpoint.empty()) std::printf("wrote %s\n", checkpoint.c_str());
        std::printf("wrote %s/\nplot: python3 examples/plots/07_data_parallel.py %s\n", dir.c_str(), out.c_str());
    });
}
