// Data-parallel training step over MPI (train/mpi.hpp) on the seed model (dim 2, width 512,
// depth 5, float32, AdamW): ms per step, samples per second and the share of the step spent in the
// gradient allreduce (6.3 MB per step), at global batch 64 and 256. Run it with 1 and 2 ranks:
//   OMP_NUM_THREADS=1 build/release/benchmarks/mpi_step --threads 2
//   OMP_NUM_THREADS=1 build/release/benchmarks/mpi_step --threads 1
//   mpirun -np 2 build/release/benchmarks/mpi_step --threads 1      (as root: --allow-run-as-root)
// Each figure is the median of 5 timed runs of 40 steps (after 5 warm-up steps), with min and max.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/train/mpi.hpp>

int main(int argc, char** argv) {
    fmd::mpi::Session session(argc, argv);
    return fmd::mpi::run(MPI_COMM_WORLD, [&] {
        int threads = 1;
        for (int i = 1; i + 1 < argc; ++i)
            if (std::string(argv[i]) == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
        Eigen::setNbThreads(threads);
        const int ranks = fmd::mpi::size();
        const bool root = fmd::mpi::is_root();
        if (root) std::printf("| ranks x threads | global batch | ms / step (min–max) | samples / s | allreduce share |\n|---|---|---|---|---|\n");
        for (long batch : {64L, 256L}) {
            fmd::nn::MLP<float> net({.dim = 2, .width = 512, .depth = 5}, 0);
            fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 1e-4});
            fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt, {.batch_size = batch / ranks});
            fmd::mpi::DataParallel parallel(trainer);
            fmd::Rng rng = fmd::mpi::rank_rng(1);
            const fmd::data::Checkerboard board;
            for (int i = 0; i < 5; ++i) trainer.train_step(board, rng);
            std::vector<double> ms, share;
            for (int rep = 0; rep < 5; ++rep) {
                MPI_Barrier(MPI_COMM_WORLD);
                const double reduce0 = parallel.allreduce_seconds(), t0 = MPI_Wtime();
                for (int i = 0; i < 40; ++i) trainer.train_step(board, rng);
                double secs = MPI_Wtime() - t0, reduce = parallel.allreduce_seconds() - reduce0;
                MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // the slowest rank sets the pace
                MPI_Allreduce(MPI_IN_PLACE, &reduce, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                ms.push_back(1e3 * secs / 40);
                share.push_back(reduce / secs);
            }
            std::sort(ms.begin(), ms.end());
            std::sort(share.begin(), share.end());
            if (root)
                std::printf("| %d x %d | %ld | %.2f (%.2f–%.2f) | %.0f | %.1f %% |\n", ranks, threads, batch, ms[2], ms.front(), ms.back(),
                            1e3 * static_cast<double>(batch) / ms[2], 100 * share[2]);
        }
    });
}
