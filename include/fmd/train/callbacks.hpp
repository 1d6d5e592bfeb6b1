#pragma once
// A training loop with callbacks: progress line, loss history, periodic checkpoints.
// A callback is any object with on_step(const StepInfo&, Trainer&, Rng&); fit() calls each after
// every step and on_end(Trainer&) when present. on_step may return train::Signal: Signal::stop ends
// training after this step (early stopping, a time budget, a target loss).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmd/core/progress.hpp>
#include <fmd/train/checkpoint.hpp>

namespace fmd::train {

/// What fit() tells each callback after a step.
struct StepInfo {
    std::int64_t step;   ///< steps done, this one included
    std::int64_t total;  ///< steps this fit() call will reach
    double loss;         ///< this batch's loss
    double grad_norm;    ///< global L2 norm of this step's gradients before clipping (NaN if not computed)
};

/// What an on_step callback may return.
enum class Signal { proceed, stop };

namespace callback_impl {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
/// Calls fn(callback), or nothing for an empty std::optional callback.
template <class C, class Fn>
void visit_callback(C& callback, Fn&& fn) {
    if constexpr (is_optional<C>::value) {
        if (callback) fn(*callback);
    } else {
        fn(callback);
    }
}
}  // namespace callback_impl

/// Runs `trainer` until it has taken `until` steps in total (so a resumed trainer continues).
/// A callback may be a `std::optional<C>`: an empty one is skipped (e.g. a CheckpointEvery that
/// exists only when a checkpoint path was given).
/// Returns the number of steps taken by this call.
template <class Trainer, class Source, class G, class... Callbacks>
std::int64_t fit(Trainer& trainer, const Source& source, G& rng, std::int64_t until, Callbacks&... callbacks) {
    const std::int64_t start = trainer.step();
    bool stop = false;
    while (!stop && trainer.step() < until) {
        const double loss = static_cast<double>(trainer.train_step(source, rng));
        [[maybe_unused]] const StepInfo info{trainer.step(), until, loss, trainer.last_grad_norm()};  // unused without callbacks
        (callback_impl::visit_callback(callbacks, [&](auto& cb) {
             if constexpr (std::is_same_v<decltype(cb.on_step(info, trainer, rng)), Signal>)
                 stop = (cb.on_step(info, trainer, rng) == Signal::stop) || stop;
             else
                 cb.on_step(info, trainer, rng);
         }),
         ...);
    }
    [[maybe_unused]] auto end = [&](auto& cb) {
        if constexpr (requires { cb.on_end(trainer); }) cb.on_end(trainer);
    };
    (callback_impl::visit_callback(callbacks, end), ...);
    return trainer.step() - start;
}

/// Progress: fmd::ProgressLine for training, "train  step/total  rate  ETA  loss <EMA>": on a
/// terminal one updating line; otherwise a plain line every `every` steps (0: quiet).
class Progress {
public:
    /// Reports to `out`; `every` is the step interval of the plain lines when `out` is not a terminal.
    explicit Progress(std::int64_t every = 1000, std::FILE* out = stderr, std::string label = "train") : line_(std::move(label), 0, every, "steps", out) {}

    /// Updates the loss EMA (decay 0.99) and prints when due.
    template <class Trainer, class G>
    void on_step(const StepInfo& s, Trainer&, G&) {
        if (first_) line_.restart(s.step - 1);  // a resumed run: the rate counts this run's steps only
        ema_ = first_ ? s.loss : 0.99 * ema_ + 0.01 * s.loss;
        first_ = false;
        line_.set_total(s.total);
        char note[40];
        std::snprintf(note, sizeof note, "loss %.4f", ema_);
        line_.update(s.step, note);
    }
    /// Ends the updating line on a terminal.
    template <class Trainer>
    void on_end(Trainer&) { line_.finish(); }
    double loss_ema() const { return ema_; }  ///< exponential moving average of the loss so far

private:
    ProgressLine line_;
    double ema_ = 0;
    bool first_ = true;
};

/// Records every step's loss.
struct LossHistory {
    std::vector<double> losses;  ///< one loss per step, in order
    /// Appends the step's loss.
    template <class Trainer, class G>
    void on_step(const StepInfo& s, Trainer&, G&) { losses.push_back(s.loss); }
};

/// Writes a checkpoint every `every` steps (durably and atomically, see save_checkpoint). A state
/// with non-finite weights is never written: save_checkpoint throws and the last good file stays.
struct CheckpointEvery {
    std::int64_t every;  ///< steps between checkpoints (≥ 1)
    std::string path;    ///< the checkpoint file, overwritten each time
    /// Throws fmd::invalid_argument naming 'every' (< 1) or 'path' (empty).
    CheckpointEvery(std::int64_t every_steps, std::string file) : every(every_steps), path(std::move(file)) {
        if (every <= 0) detail::fail("train::CheckpointEvery", "every", "must be >= 1 (steps between checkpoints), got ", every);
        if (path.empty()) detail::fail("train::CheckpointEvery", "path", "must name a file");
    }
    /// Saves trainer.checkpoint(rng) when the step is a multiple of `every`.
    template <class Trainer, class G>
    void on_step(const StepInfo& s, Trainer& trainer, G& rng) {
        if (s.step % every == 0) save_checkpoint(path, trainer.checkpoint(rng));
    }
};

}  // namespace fmd::train
