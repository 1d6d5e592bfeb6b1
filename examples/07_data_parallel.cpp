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
// resumable with --resume FILE under the same number of ranks) and the picture 07_samples.png. A rank
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
#include "common/plot.hpp"

using S = float;

int main(int argc, char** argv) {
    fmd::mpi::Session session(argc, argv);
    return fmd::mpi::run(MPI_COMM_WORLD, [&] {
        cli::Args args(argc, argv);
        const bool root = fmd::mpi::is_root();
        if (args.help()) {
            if (root)
                std::puts("[mpirun -np N] 07_data_parallel [--out DIR] [--steps 4000] [--batch 256] [--width 256] [--depth 3] [--lr 1e-3]\n"
                          "                                [--threads T] [--checkpoint FILE] [--resume FILE] [--seed 0]");
            return;
        }
        const int ranks = fmd::mpi::size();
        const std::string out = args.str("out", ".");
        const long steps = args.integer("steps", 4000), batch = args.integer("batch", 256);
        const long width = args.integer("width", 256), depth = args.integer("depth", 3);
        const double lr = args.real("lr", 1e-3);
        const long cores = std::max(1L, static_cast<long>(std::thread::hardware_concurrency()));
        const int threads = static_cast<int>(args.integer("threads", std::max(1L, cores / ranks)));
        const std::string checkpoint = args.str("checkpoint", ""), resume = args.str("resume", "");
        const auto seed = static_cast<std::uint64_t>(args.integer("seed", 0));
        args.finish();
        if (steps < 1 || width < 1 || depth < 0 || threads < 1) cli::Args::fail("--steps, --width, --threads must be >= 1, --depth >= 0");
        if (batch < ranks || batch % ranks != 0) cli::Args::fail("--batch must be a multiple of the number of ranks");
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
        std::printf("filled-square fraction of 2000 samples (Heun, 100 NFE): %.3f\n", board.filled_fraction(x));
        plot::Canvas c(320, 320, -4.5, 4.5, -4.5, 4.5);
        c.frame();
        c.scatter(x, plot::blue, 1.0, 0.45);
        plot::save_panels({c}, {std::to_string(ranks) + " rank(s)"}, 1, out + "/07_samples.png");
        if (!checkpoint.empty()) std::printf("wrote %s\n", checkpoint.c_str());
        std::printf("wrote %s/07_samples.png\n", out.c_str());
    });
}
