#pragma once
// Data-parallel training over MPI (optional: needs an MPI library; CMake target fmd::mpi).
//
// Each rank trains the same network on its own share of the global batch, drawn from its own
// random stream (rank_rng: std::seed_seq{seed, rank}). After every backward pass one MPI_Allreduce
// sums the contiguous gradient buffer, divided by the number of ranks (the global-batch mean when
// the ranks' batches are equal), and a second, one-number allreduce gives the global mean loss.
// Every rank then takes the same optimizer step from the same gradients, so parameters, optimizer
// state and EMA stay identical on all ranks without being sent again: rank 0's state is broadcast
// once at the start and on restore. Everything the Trainer composes (couplings, objectives such as
// MeanFlow, clipping, EMA, labels) runs per rank on local data before the allreduce; a coupling
// pairs within a rank's batch and pool.
//
// Checkpoints carry every rank's generator state, so a run resumed under the same number of ranks
// continues bit-identically; only rank 0 writes (save) or reads (load) the file. Progress and other
// output belong on rank 0 (is_root()).
//
// Failures: a rank that throws must not leave the others waiting in a collective. run(comm, body)
// catches the exception, prints it with the rank, and calls MPI_Abort, which stops every rank
// (mpirun exits non-zero). load() reports a file rank 0 cannot read to every rank as the same error.
//
//   fmd::mpi::Session session(argc, argv);
//   return fmd::mpi::run(MPI_COMM_WORLD, [&] {
//       fmd::Rng rng = fmd::mpi::rank_rng(seed);
//       fmd::train::Trainer trainer(path, loss, net, opt, {.batch_size = global_batch / fmd::mpi::size()});
//       fmd::mpi::DataParallel parallel(trainer);      // broadcasts rank 0's weights, installs the allreduce
//       fmd::train::fit(trainer, data, rng, steps, progress_on_root);
//       parallel.save("model.ckpt", rng);              // collective; rank 0 writes
//   });
// The C API only: the deprecated C++ bindings some MPI headers still pull in are not needed.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/file.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/train/checkpoint.hpp>

namespace fmd::mpi {

/// This process's rank in comm.
inline int rank(MPI_Comm comm = MPI_COMM_WORLD) {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    return r;
}
/// The number of ranks in comm.
inline int size(MPI_Comm comm = MPI_COMM_WORLD) {
    int n = 1;
    MPI_Comm_size(comm, &n);
    return n;
}
/// True on rank 0 of comm.
inline bool is_root(MPI_Comm comm = MPI_COMM_WORLD) { return rank(comm) == 0; }

/// MPI_Init_thread (funneled: Eigen's OpenMP threads never call MPI) and MPI_Finalize.
class Session {
public:
    /// Initializes MPI with main's arguments.
    Session(int& argc, char**& argv) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
};

/// The rank's own generator: fmd::Rng seeded by std::seed_seq{seed (two halves), rank}.
inline Rng rank_rng(std::uint64_t seed, MPI_Comm comm = MPI_COMM_WORLD) {
    std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32), static_cast<std::uint32_t>(rank(comm))};
    return Rng(seq);
}

/// Runs body; an exception on any rank is printed with its rank and ends every rank through
/// MPI_Abort (exit status 1) instead of leaving the others blocked in a collective. Returns 0.
template <class F>
int run(MPI_Comm comm, F&& body) {
    try {
        body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fmd::mpi: rank %d of %d failed: %s\n", rank(comm), size(comm), e.what());
        std::fflush(stderr);
        MPI_Abort(comm, 1);
    }
    return 0;
}

namespace detail {
template <class S>
MPI_Datatype datatype() {
    if constexpr (std::is_same_v<S, float>) return MPI_FLOAT;
    else return MPI_DOUBLE;
}
inline void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) fmd::detail::fail_io("mpi", "comm", call, " failed with MPI error ", rc);
}

/// Broadcasts rank root's bytes (and, when `error` is non-empty on root, that error: every rank
/// throws it).
inline std::vector<char> broadcast_bytes(std::vector<char> bytes, const std::string& error, int root, MPI_Comm comm) {
    long long n = error.empty() ? static_cast<long long>(bytes.size()) : -static_cast<long long>(error.size());
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm), "MPI_Bcast");
    std::vector<char> buffer = std::move(bytes);
    const auto count = static_cast<std::size_t>(n < 0 ? -n : n);
    buffer.resize(count);
    if (n < 0 && rank(comm) == root) buffer.assign(error.begin(), error.end());
    for (std::size_t off = 0; off < count; off += INT_MAX) {
        const int chunk = static_cast<int>(std::min<std::size_t>(INT_MAX, count - off));
        check(MPI_Bcast(buffer.data() + off, chunk, MPI_CHAR, root, comm), "MPI_Bcast");
    }
    if (n < 0) throw fmd::io_error(std::string(buffer.begin(), buffer.end()));
    return buffer;
}
}  // namespace detail

/// Data-parallel training of one Trainer per rank (see the header comment). Construct it on every
/// rank after the trainer; it must outlive the training (the trainer calls back into it). Its
/// checkpoint / save / restore / load are collective: every rank calls them.
template <class Trainer>
class DataParallel {
public:
    using S = typename Trainer::S;  ///< the trainer's scalar

    /// Installs the allreduce as the trainer's gradient reducer and broadcasts rank 0's state (collective).
    explicit DataParallel(Trainer& trainer, MPI_Comm comm = MPI_COMM_WORLD) : trainer_(&trainer), comm_(comm) {
        trainer.set_gradient_reducer([this](Eigen::Ref<Vector<S>> g, double loss) { return reduce(g, loss); });
        broadcast_state();
    }
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;

    int rank() const { return mpi::rank(comm_); }  ///< this rank in the communicator
    int size() const { return mpi::size(comm_); }  ///< number of ranks
    /// Seconds spent in the allreduces, and their number (for the benchmark's share of step time).
    double allreduce_seconds() const { return seconds_; }
    long allreduces() const { return count_; }  ///< number of gradient allreduces so far

    /// Copies rank 0's parameters, optimizer state, EMA and step to every rank (not the generators).
    void broadcast_state() {
        Rng scratch;
        std::vector<char> bytes;
        if (rank() == 0) bytes = train::serialize_checkpoint(trainer_->checkpoint(scratch));
        bytes = detail::broadcast_bytes(std::move(bytes), {}, 0, comm_);
        if (rank() != 0) trainer_->restore(train::parse_checkpoint<S>(bytes, "rank 0's state"), scratch);
    }

    /// The trainer's checkpoint with every rank's generator state (complete on rank 0).
    template <class G>
    train::Checkpoint<S> checkpoint(const G& rng) const {
        train::Checkpoint<S> c = trainer_->checkpoint(rng);
        const std::vector<std::string> states = gather(c.rng_state);
        if (rank() == 0) {
            std::ostringstream os;
            os << "fmd-mpi-ranks " << states.size() << '\n';
            for (const std::string& s : states) os << s.size() << '\n' << s;
            c.rng_state = os.str();
        }
        return c;
    }
    /// Collective save: rank 0 writes `path` (durably, train::save_checkpoint); all ranks return after it.
    template <class G>
    void save(const std::string& path, const G& rng) const {
        const train::Checkpoint<S> c = checkpoint(rng);
        std::string error;
        if (rank() == 0) {
            try {
                train::save_checkpoint(path, c);
            } catch (const std::exception& e) {
                error = e.what();
            }
        }
        detail::broadcast_bytes({}, error, 0, comm_);  // every rank learns whether the write failed
    }

    /// Collective restore from rank 0's checkpoint (ignored on the other ranks); each rank takes its
    /// own generator state. The number of ranks must be the one the checkpoint was written with.
    template <class G>
    void restore(const train::Checkpoint<S>& c, G& rng) {
        std::vector<char> bytes;
        if (rank() == 0) bytes = train::serialize_checkpoint(c);
        restore_bytes(detail::broadcast_bytes(std::move(bytes), {}, 0, comm_), "checkpoint", rng);
    }
    /// Collective load: rank 0 reads `path`; a read error reaches every rank as the same fmd::io_error.
    template <class G>
    void load(const std::string& path, G& rng) {
        std::vector<char> bytes;
        std::string error;
        if (rank() == 0) {
            try {
                bytes = fmd::detail::read_file(path, "mpi::DataParallel::load");
            } catch (const std::exception& e) {
                error = e.what();
            }
        }
        restore_bytes(detail::broadcast_bytes(std::move(bytes), error, 0, comm_), path, rng);
    }

private:
    double reduce(Eigen::Ref<Vector<S>> g, double loss) {
        const double start = MPI_Wtime();
        const int n = size();
        for (Eigen::Index off = 0; off < g.size(); off += INT_MAX) {
            const int chunk = static_cast<int>(std::min<Eigen::Index>(INT_MAX, g.size() - off));
            detail::check(MPI_Allreduce(MPI_IN_PLACE, g.data() + off, chunk, detail::datatype<S>(), MPI_SUM, comm_), "MPI_Allreduce");
        }
        if (n > 1) g /= static_cast<S>(n);
        double total = loss;
        detail::check(MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
        seconds_ += MPI_Wtime() - start;
        ++count_;
        return total / n;
    }

    std::vector<std::string> gather(const std::string& mine) const {
        const int n = size();
        int len = static_cast<int>(mine.size());
        std::vector<int> lens(static_cast<std::size_t>(n)), offsets(static_cast<std::size_t>(n));
        detail::check(MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, comm_), "MPI_Gather");
        int total = 0;
        for (int i = 0; i < n; ++i) {
            offsets[static_cast<std::size_t>(i)] = total;
            total += lens[static_cast<std::size_t>(i)];
        }
        std::vector<char> all(static_cast<std::size_t>(rank() == 0 ? total : 0));
        detail::check(MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, 0, comm_), "MPI_Gatherv");
        std::vector<std::string> out;
        if (rank() == 0)
            for (int i = 0; i < n; ++i)
                out.emplace_back(all.data() + offsets[static_cast<std::size_t>(i)], static_cast<std::size_t>(lens[static_cast<std::size_t>(i)]));
        return out;
    }

    template <class G>
    void restore_bytes(const std::vector<char>& bytes, const std::string& name, G& rng) {
        constexpr const char* where = "mpi::DataParallel::restore";
        train::Checkpoint<S> c = train::parse_checkpoint<S>(bytes, name);
        // rng_state: "fmd-mpi-ranks N\n" then, per rank, "<length>\n<state>".
        std::istringstream is(c.rng_state);
        std::string tag;
        long ranks = 0;
        is >> tag >> ranks;
        if (tag != "fmd-mpi-ranks" || !is) fmd::detail::fail(where, "checkpoint", "was not written by mpi::DataParallel (no per-rank generator states)");
        if (ranks != size()) fmd::detail::fail(where, "checkpoint", "holds ", ranks, " ranks' generator states; this run has ", size(), " ranks");
        std::string own;
        for (long r = 0; r < ranks; ++r) {
            std::size_t len = 0;
            is >> len;
            is.get();
            std::string state(len, '\0');
            is.read(state.data(), static_cast<std::streamsize>(len));
            if (!is) fmd::detail::fail(where, "checkpoint", "holds a truncated generator state for rank ", r);
            if (r == rank()) own = std::move(state);
        }
        c.rng_state = std::move(own);
        trainer_->restore(c, rng);
    }

    Trainer* trainer_;
    MPI_Comm comm_;
    double seconds_ = 0;
    long count_ = 0;
};

}  // namespace fmd::mpi
