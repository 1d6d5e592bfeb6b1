// Training never passes a non-finite number on silently: a diverging run (SGD with a huge
// learning rate) or a NaN batch stops with fmd::numerical_error naming what went non-finite and
// the step, before the optimizer touches the weights; the last good checkpoint survives;
// non-finite checkpoints are neither written nor accepted; data sets reject NaN / Inf; labels
// outside [0, num_classes) are rejected instead of training as the null label; bad callback
// and optimizer-kind mismatches are errors.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

namespace train = fmd::train;
using fmd::Matrix;
using fmd::Vector;
using fmd_test::names;
using fmd_test::separated_blobs;
using fmd_test::TempDir;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;
using Catch::Matchers::Contains;

const fmd::nn::MLPConfig divergence_net{.dim = 2, .width = 32, .depth = 2};

/// A data source that hands out one NaN batch at the chosen call.
struct PoisonedSource {
    fmd::GaussianMixture<double> mix = separated_blobs<double>();
    mutable int calls = 0;
    int poison_at = 3;
    void sample(Matrix<double>& out, fmd::Rng& rng) const {
        mix.sample(out, rng);
        if (++calls == poison_at) out(1, 5) = std::numeric_limits<double>::quiet_NaN();
    }
};

}  // namespace

TEST_CASE("Trainer: a NaN batch stops training naming the loss and the step; the weights are untouched", "[train]") {
    fmd::nn::MLP<double> net(divergence_net, 1);
    fmd::nn::AdamW<double> opt(net.parameter_count());
    train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 16, .ema_decay = 0.9});
    PoisonedSource source;
    fmd::Rng rng(2);
    trainer.train_step(source, rng);
    trainer.train_step(source, rng);
    const Vector<double> before = net.parameters(), ema_before = trainer.ema();
    const auto opt_before = opt.state();
    CHECK_THROWS_AS(trainer.train_step(source, rng), fmd::numerical_error);
    CHECK(net.parameters() == before);
    CHECK(trainer.ema() == ema_before);
    CHECK(opt.state().step == opt_before.step);
    CHECK(opt.state().buffers[0] == opt_before.buffers[0]);
    CHECK(trainer.step() == 2);
    // The message names the loss and the step.
    source.calls = 2;
    CHECK_THROWS_MATCHES(trainer.train_step(source, rng), fmd::error, names("loss", "at step 3"));
    // Training continues once the data are clean.
    CHECK_NOTHROW(trainer.train_step(source, rng));
    CHECK(net.parameters().allFinite());
}

TEST_CASE("Trainer: divergence (SGD, lr 1e30) stops with numerical_error; the last checkpoint stays good", "[train]") {
    TempDir tmp;
    const std::string path = tmp.file("last_good.ckpt");
    fmd::nn::MLP<float> net(divergence_net, 3);
    fmd::nn::SGD<float> opt(net.parameter_count(), {.lr = 1e30});
    train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 32});
    const auto mix = separated_blobs<float>();
    fmd::Rng rng(4);
    train::save_checkpoint(path, trainer.checkpoint(rng));
    train::CheckpointEvery every{1, path};
    std::string message;
    try {
        train::fit(trainer, mix, rng, 100, every);
    } catch (const fmd::numerical_error& e) {
        message = e.what();
    }
    INFO(message);
    REQUIRE_FALSE(message.empty());
    CHECK_THAT(message, Contains("train::Trainer::train_step") && Contains(" step "));
    CHECK((message.find("argument 'loss'") != std::string::npos || message.find("argument 'gradients'") != std::string::npos ||
           message.find("argument 'parameters'") != std::string::npos));
    CHECK(trainer.step() < 100);
    // Whatever the weights are now, the file holds the last finite state and loads.
    const auto c = train::load_checkpoint<float>(path);
    CHECK(c.parameters.allFinite());
    CHECK(c.step <= static_cast<std::uint64_t>(trainer.step()));
}

TEST_CASE("Trainer: check_finite = false is the documented opt-out (NaN then reaches the weights)", "[train]") {
    fmd::nn::MLP<double> net(divergence_net, 1);
    fmd::nn::AdamW<double> opt(net.parameter_count());
    train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 16, .check_finite = false});
    PoisonedSource source;
    source.poison_at = 1;
    fmd::Rng rng(2);
    CHECK_NOTHROW(trainer.train_step(source, rng));
    CHECK_FALSE(net.parameters().allFinite());
    // …and such a state is never written nor restored.
    TempDir tmp;
    CHECK_THROWS_MATCHES(train::save_checkpoint(tmp.file("nan.ckpt"), trainer.checkpoint(rng)), fmd::numerical_error,
                         names("checkpoint", "non-finite parameters"));
    auto c = trainer.checkpoint(rng);
    fmd::nn::MLP<double> net2(divergence_net, 1);
    fmd::nn::AdamW<double> opt2(net2.parameter_count());
    train::Trainer fresh(LinearPath{}, fmd::loss::cfm, net2, opt2, {.batch_size = 16});
    const Vector<double> fresh_before = net2.parameters();
    CHECK_THROWS_MATCHES(fresh.restore(c, rng), fmd::invalid_argument, names("checkpoint", "non-finite"));
    CHECK(net2.parameters() == fresh_before);
    // A file holding NaN (written around save_checkpoint's check) is rejected by the reader.
    const auto bytes = train::serialize_checkpoint(c);
    CHECK_THROWS_MATCHES(train::parse_checkpoint<double>(bytes, "nan"), fmd::io_error, names("nan", "non-finite parameters"));
}

TEST_CASE("Checkpoints: step counts above 2^63 - 1 and a state of another optimizer kind are rejected", "[train]") {
    fmd::nn::MLP<double> net(divergence_net, 1);
    fmd::nn::AdamW<double> adamw(net.parameter_count());
    train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, adamw, {.batch_size = 16});
    fmd::Rng rng(5);
    trainer.train_step(separated_blobs<double>(), rng);
    const auto good = trainer.checkpoint(rng);
    CHECK(good.optimizer == "nn::AdamW");

    auto c = good;
    c.step = std::uint64_t{1} << 63;
    CHECK_THROWS_MATCHES(trainer.restore(c, rng), fmd::invalid_argument, names("checkpoint", "step count above 2^63 - 1"));
    CHECK_THROWS_MATCHES(train::parse_checkpoint<double>(train::serialize_checkpoint(c), "file"), fmd::io_error,
                         names("file", "step count above 2^63 - 1"));
    c = good;
    c.optimizer_step = ~std::uint64_t{0};
    CHECK_THROWS_MATCHES(trainer.restore(c, rng), fmd::invalid_argument, names("checkpoint", "step count"));

    // AdamW's state into Adam (same buffers, different update rule): refused.
    fmd::nn::MLP<double> net2(divergence_net, 1);
    fmd::nn::Adam<double> adam(net2.parameter_count());
    train::Trainer other(LinearPath{}, fmd::loss::cfm, net2, adam, {.batch_size = 16});
    CHECK_THROWS_MATCHES(other.restore(good, rng), fmd::invalid_argument, names("checkpoint", "different optimizer ('nn::AdamW' vs 'nn::Adam')"));
    fmd::nn::SGD<double> sgd(net2.parameter_count(), {.momentum = 0.9});
    train::Trainer sgd_trainer(LinearPath{}, fmd::loss::cfm, net2, sgd, {.batch_size = 16});
    CHECK_THROWS_MATCHES(sgd_trainer.restore(good, rng), fmd::invalid_argument, names("checkpoint", "different optimizer"));
    // The same kind restores (control).
    fmd::nn::AdamW<double> adamw2(net2.parameter_count());
    train::Trainer same(LinearPath{}, fmd::loss::cfm, net2, adamw2, {.batch_size = 16});
    CHECK_NOTHROW(same.restore(good, rng));
}

TEST_CASE("Checkpoints: version 1 files (no optimizer field) still load", "[train]") {
    auto c = train::Checkpoint<double>{};
    c.architecture = "arch";
    c.parameters = Vector<double>::LinSpaced(5, 0, 1);
    c.step = 7;
    c.rng_state = "r";
    auto b = train::serialize_checkpoint(c);  // version 2 with an empty optimizer field
    const std::uint32_t v1 = 1;
    std::memcpy(b.data() + 8, &v1, 4);
    const std::size_t optimizer_field = 16 + 8 + c.architecture.size();
    b.erase(b.begin() + static_cast<std::ptrdiff_t>(optimizer_field), b.begin() + static_cast<std::ptrdiff_t>(optimizer_field + 8));
    const std::uint64_t h = train::ckpt::fnv1a(b.data(), b.size() - 8);
    std::memcpy(b.data() + b.size() - 8, &h, 8);
    const auto back = train::parse_checkpoint<double>(b);
    CHECK(back.architecture == "arch");
    CHECK(back.optimizer.empty());
    CHECK(back.parameters == c.parameters);
    CHECK(back.step == 7);
}

TEST_CASE("Data sets reject NaN / Inf points; labels must lie below num_classes", "[train][data]") {
    Matrix<double> pts = Matrix<double>::Random(2, 10);
    pts(0, 4) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_MATCHES(fmd::data::Dataset<double>(pts), fmd::invalid_argument, names("points", "non-finite"));
    pts(0, 4) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_MATCHES(fmd::data::LabelledDataset<double>(pts, std::vector<int>(10, 0)), fmd::invalid_argument, names("points", "non-finite"));

    fmd::nn::MLP<double> net({.dim = 2, .width = 16, .depth = 1, .num_classes = 3}, 1);
    fmd::nn::AdamW<double> opt(net.parameter_count());
    train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 4});
    fmd::Rng rng(1);
    const Matrix<double> z = Matrix<double>::Random(2, 4);
    const std::vector<int> with_null = {0, 1, 3, 2};  // 3 = num_classes = the null label
    CHECK_THROWS_MATCHES(trainer.step_on(z, fmd::Labels(with_null), rng), fmd::invalid_argument, names("labels", "got 3 at column 2"));
    const std::vector<int> negative = {0, -1, 1, 2};
    CHECK_THROWS_MATCHES(trainer.step_on(z, fmd::Labels(negative), rng), fmd::invalid_argument, names("labels", "got -1"));
    const std::vector<int> ok = {0, 1, 2, 2};
    CHECK_NOTHROW(trainer.step_on(z, fmd::Labels(ok), rng));
    // The data set path: a LabelledDataset whose labels reach num_classes fails at the step.
    Matrix<double> good_pts = Matrix<double>::Random(2, 6);
    fmd::data::LabelledDataset<double> data(good_pts, {0, 1, 2, 3, 0, 1});
    CHECK_THROWS_MATCHES([&] { for (int i = 0; i < 20; ++i) trainer.train_step(data, rng); }(), fmd::invalid_argument, names("labels"));
}

TEST_CASE("CheckpointEvery: every <= 0 and an empty path are errors, not a silent never-save", "[train]") {
    CHECK_THROWS_MATCHES(train::CheckpointEvery(0, "x.ckpt"), fmd::invalid_argument, names("every", "got 0"));
    CHECK_THROWS_MATCHES(train::CheckpointEvery(-5, "x.ckpt"), fmd::invalid_argument, names("every", "got -5"));
    CHECK_THROWS_MATCHES(train::CheckpointEvery(10, ""), fmd::invalid_argument, names("path"));
}
