// A rank that throws in the middle of training (here rank 1 at step 5, the other rank already
// waiting in the gradient allreduce) must stop every rank with the error and a non-zero exit,
// never hang: fmd::mpi::run aborts the job. Run by tests/mpi/expect_abort.cmake with a timeout.
#include <stdexcept>

#include <fmd/fmd.hpp>
#include <fmd/train/mpi.hpp>

int main(int argc, char** argv) {
    fmd::mpi::Session session(argc, argv);
    return fmd::mpi::run(MPI_COMM_WORLD, [] {
        fmd::nn::MLP<float> net({.dim = 2, .width = 16, .depth = 1}, 1);
        fmd::nn::AdamW<float> opt(net.parameter_count());
        fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt, {.batch_size = 8});
        fmd::mpi::DataParallel parallel(trainer);
        fmd::Rng rng = fmd::mpi::rank_rng(7);
        const fmd::data::Checkerboard board;
        for (int step = 0; step < 1000; ++step) {
            if (fmd::mpi::rank() == 1 && step == 5) throw std::runtime_error("cannot read shard 1 (simulated)");
            trainer.train_step(board, rng);
        }
    });
}
