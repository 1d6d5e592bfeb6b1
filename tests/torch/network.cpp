// fmd::libtorch::Network: a LibTorch module as an fmd field and trainable network.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fmd/fmd.hpp>
#include <fmd/torch/network.hpp>

namespace {

using fmd::Matrix;
using fmd::Vector;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;

// The seed notebook's model written in LibTorch (h = in(x) + time(emb(t)) [+ E_y]; ReLU blocks;
// out), the same function as fmd::nn::MLP with the default sinusoidal embedding.
struct NotebookImpl : torch::nn::Module {
    NotebookImpl(int dim, int width, int depth, int num_classes = 0) : width_(width) {
        in = register_module("in_projection", torch::nn::Linear(dim, width));
        time = register_module("t_projection", torch::nn::Linear(width, width));
        for (int k = 0; k < depth; ++k) blocks.push_back(register_module("block" + std::to_string(k), torch::nn::Linear(width, width)));
        out = register_module("out_projection", torch::nn::Linear(width, dim));
        if (num_classes > 0) table = register_module("classes", torch::nn::Embedding(num_classes + 1, width));
    }
    torch::Tensor embed(const torch::Tensor& t) const {
        const int half = width_ / 2;
        const double step = std::log(10000.0) / (half - 1);
        const auto freqs = torch::exp(torch::arange(half, t.options()) * -step);
        const auto angles = (t * 10000.0).unsqueeze(1) * freqs.unsqueeze(0);
        return torch::cat({angles.sin(), angles.cos()}, 1);
    }
    torch::Tensor forward(torch::Tensor x, torch::Tensor t) { return head(in->forward(x) + time->forward(embed(t))); }
    torch::Tensor forward(torch::Tensor x, torch::Tensor t, torch::Tensor y) { return head(in->forward(x) + time->forward(embed(t)) + table->forward(y)); }
    torch::Tensor head(torch::Tensor h) {
        for (auto& b : blocks) h = torch::relu(b->forward(h));
        return out->forward(h);
    }
    int width_;
    torch::nn::Linear in{nullptr}, time{nullptr}, out{nullptr};
    std::vector<torch::nn::Linear> blocks;
    torch::nn::Embedding table{nullptr};
};
TORCH_MODULE(Notebook);

// Copies fmd::nn::MLP's parameters into the LibTorch twin (weights: Eigen column-major out x in
// is a row-major [in, out] tensor, transposed into torch's [out, in]).
template <class S>
void copy_into(const fmd::nn::MLP<S>& mlp, NotebookImpl& m) {
    torch::NoGradGuard no_grad;
    const auto options = torch::TensorOptions().dtype(fmd::libtorch::dtype_of<S>());
    S* p = const_cast<S*>(mlp.parameters().data());
    std::int64_t offset = 0;
    auto take = [&](torch::nn::Linear& l) {
        const std::int64_t rows = l->weight.size(0), cols = l->weight.size(1);
        l->weight.copy_(torch::from_blob(p + offset, {cols, rows}, options).t());
        l->bias.copy_(torch::from_blob(p + offset + rows * cols, {rows}, options));
        offset += rows * cols + rows;
    };
    take(m.in);
    take(m.time);
    for (auto& b : m.blocks) take(b);
    take(m.out);
    if (!m.table.is_empty()) {
        const std::int64_t classes = m.table->weight.size(0), width = m.table->weight.size(1);
        m.table->weight.copy_(torch::from_blob(p + offset, {classes, width}, options));
        offset += classes * width;
    }
    REQUIRE(offset == mlp.parameter_count());
}

// A module that returns the wrong shape.
struct TransposedImpl : torch::nn::Module {
    TransposedImpl() { lin = register_module("lin", torch::nn::Linear(2, 2)); }
    torch::Tensor forward(torch::Tensor x, torch::Tensor) { return lin->forward(x).t(); }
    torch::nn::Linear lin{nullptr};
};
TORCH_MODULE(Transposed);

// Two submodules holding the same parameter tensor.
struct SharedImpl : torch::nn::Module {
    SharedImpl() {
        w = register_parameter("w", torch::ones({2, 2}));
        register_parameter("w_again", w);
    }
    torch::Tensor forward(torch::Tensor x, torch::Tensor) { return x.matmul(w).matmul(w); }
    torch::Tensor w;
};
TORCH_MODULE(Shared);

auto names(const std::string& argument) {
    const std::string needle = "argument '" + argument + "'";
    return Catch::Predicate<fmd::error>([needle](const fmd::error& e) { return std::string(e.what()).find(needle) != std::string::npos; },
                                        "an fmd::error naming " + needle);
}

std::filesystem::path scratch(const std::string& name) { return std::filesystem::temp_directory_path() / ("fmd_torch_" + std::to_string(::getpid()) + "_" + name); }

}  // namespace

TEST_CASE("libtorch::Network: the field equals calling the module directly, also on strided blocks", "[torch]") {
    torch::manual_seed(1);
    Notebook module(3, 16, 2);
    module->to(torch::kFloat64);
    fmd::libtorch::Network<double, Notebook> net(module, 3);
    REQUIRE(net.parameter_count() == 3 * 16 + 16 + 16 * 16 + 16 + 2 * (16 * 16 + 16) + 16 * 3 + 3);

    fmd::Rng rng(5);
    Matrix<double> big(5, 40);
    fmd::fill_normal(big, rng);
    const auto x = big.block(1, 3, 3, 30);  // outer stride 5: staged before it enters the module
    const Matrix<double> xc = x;
    Matrix<double> out(3, 30), out_c(3, 30);
    net(x, 0.37, out);
    net(xc, 0.37, out_c);

    torch::NoGradGuard no_grad;
    const auto xt = torch::from_blob(const_cast<double*>(xc.data()), {30, 3}, torch::kFloat64);
    const auto direct = module->forward(xt, torch::full({30}, 0.37, torch::kFloat64)).contiguous();
    const Eigen::Map<const Matrix<double>> ref(direct.data_ptr<double>(), 3, 30);
    CHECK((out - ref).cwiseAbs().maxCoeff() == 0.0);
    CHECK((out_c - ref).cwiseAbs().maxCoeff() == 0.0);
    CHECK(ref.cwiseAbs().maxCoeff() > 1e-3);  // not a vacuous comparison of zeros

    // Parameters are views of the flat buffer: writing through fmd changes the module.
    net.parameters().setZero();
    net(xc, 0.37, out);
    CHECK(out.cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("libtorch::Network trains through fmd's Trainer like fmd's own MLP of the same shape and initialization", "[torch][train]") {
    // Double precision, same parameters, same batches (same rng stream): the two networks differ
    // only in the summation order of their products, so the losses agree to rounding over 30
    // AdamW steps; 1e-9 relative leaves room for that and nothing else.
    using S = double;
    const fmd::nn::MLPConfig config{.dim = 2, .width = 32, .depth = 2};
    fmd::nn::MLP<S> mlp(config, 11);
    Notebook module(2, 32, 2);
    module->to(torch::kFloat64);
    copy_into(mlp, *module);
    fmd::libtorch::Network<S, Notebook> net(module, 2);
    REQUIRE(net.parameter_count() == mlp.parameter_count());

    const fmd::nn::AdamWConfig adamw{.lr = 3e-3, .weight_decay = 0.01};
    fmd::nn::AdamW<S> opt_a(mlp.parameter_count(), adamw), opt_b(net.parameter_count(), adamw);
    const LinearPath path;
    fmd::train::Trainer ta(path, fmd::loss::cfm, mlp, opt_a, {.batch_size = 64});
    fmd::train::Trainer tb(path, fmd::loss::cfm, net, opt_b, {.batch_size = 64});
    const auto data = fmd::GaussianMixture<S>::ring(8, 4.0, 0.35);
    fmd::Rng ra(3), rb(3);
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
        const double la = ta.train_step(data, ra), lb = tb.train_step(data, rb);
        INFO("step " << step);
        REQUIRE(std::abs(la - lb) <= 1e-9 * std::abs(la));
        if (step == 0) first = la;
        last = la;
    }
    CHECK(last < first);  // it did train
    // The trained parameters agree too (the whole trajectory, not just the losses).
    Matrix<double> x(2, 50), ua(2, 50), ub(2, 50);
    fmd::fill_normal(x, ra);
    mlp(x, 0.6, ua);
    net(x, 0.6, ub);
    CHECK((ua - ub).cwiseAbs().maxCoeff() <= 1e-9 * ua.cwiseAbs().maxCoeff());
}

TEST_CASE("libtorch::Optimizer: torch::optim updates the parameters exactly like fmd's optimizer of the same settings", "[torch][train]") {
    // torch.optim.AdamW and fmd::nn::AdamW implement the same update (fmd's is checked against
    // PyTorch in tests/nn); through the adapter both see the same gradients, so after 5 steps the
    // parameters agree to rounding.
    using S = double;
    torch::manual_seed(7);
    Notebook ma(2, 16, 1), mb(2, 16, 1);
    ma->to(torch::kFloat64);
    mb->to(torch::kFloat64);
    {
        torch::NoGradGuard no_grad;
        for (std::size_t i = 0; i < ma->parameters().size(); ++i) mb->parameters()[i].copy_(ma->parameters()[i]);
    }
    fmd::libtorch::Network<S, Notebook> na(ma, 2), nb(mb, 2);
    torch::optim::AdamW torch_adamw(na.module()->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.05));
    fmd::libtorch::Optimizer<S, torch::optim::AdamW> oa(torch_adamw, na);
    fmd::nn::AdamW<S> ob(nb.parameter_count(), {.lr = 1e-2, .weight_decay = 0.05});
    const LinearPath path;
    fmd::train::Trainer ta(path, fmd::loss::cfm, na, oa, {.batch_size = 32});
    fmd::train::Trainer tb(path, fmd::loss::cfm, nb, ob, {.batch_size = 32});
    const auto data = fmd::GaussianMixture<S>::ring(4, 2.0, 0.3);
    fmd::Rng ra(9), rb(9);
    const Vector<S> before = na.parameters();
    for (int step = 0; step < 5; ++step) {
        ta.train_step(data, ra);
        tb.train_step(data, rb);
        torch_adamw.zero_grad();  // drops or zeroes the .grad views; the adapter relinks them
    }
    const Vector<S> pa = na.parameters(), pb = nb.parameters();
    CHECK((pa - before).cwiseAbs().maxCoeff() > 1e-3);  // torch's step moved the flat buffer
    CHECK((pa - pb).cwiseAbs().maxCoeff() <= 1e-12);
    // The learning-rate schedule reaches torch's parameter groups.
    oa.set_lr(0.25);
    CHECK(torch_adamw.param_groups().front().options().get_lr() == 0.25);
    CHECK(oa.lr() == 0.25);
    Vector<S> other = pa;
    CHECK_THROWS_MATCHES(oa.step(other, other), fmd::invalid_argument, names("params"));
}

TEST_CASE("libtorch::Network with labels: classifier-free guidance mixes the module's two branches", "[torch][guidance]") {
    using S = float;
    torch::manual_seed(3);
    Notebook module(2, 16, 1, /*num_classes=*/3);
    fmd::libtorch::Network<S, Notebook> net(module, 2, 3);
    static_assert(fmd::nn::ConditionalNetwork<decltype(net), S>);
    REQUIRE(net.null_label() == 3);
    fmd::Rng rng(1);
    Matrix<S> x(2, 20), cond(2, 20), uncond(2, 20), guided(2, 20);
    fmd::fill_normal(x, rng);
    const std::vector<int> y(20, 1), null(20, 3);
    net(x, 0.4, y, cond);
    net(x, 0.4, null, uncond);
    fmd::Guided<S, decltype(net)> g(net, net.null_label(), 2.5, y);
    g(x, 0.4, guided);
    // theory.md §7.8: ũ = (1 − w) u(x | ∅) + w u(x | y).
    const Matrix<S> expected = S(1 - 2.5) * uncond + S(2.5) * cond;
    CHECK((guided - expected).cwiseAbs().maxCoeff() <= 1e-5f * expected.cwiseAbs().maxCoeff());
    CHECK((cond - uncond).cwiseAbs().maxCoeff() > 1e-3f);  // the labels matter

    // Labelled training draws label dropout and runs through the module's three-argument forward.
    fmd::LabelledMixture<S> data(fmd::GaussianMixture<S>::ring(3, 2.0, 0.3), {0, 1, 2});
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 16, .label_dropout = 0.2});
    const Vector<S> before = net.parameters();
    trainer.train_step(data, rng);
    CHECK((net.parameters() - before).cwiseAbs().maxCoeff() > 0.0f);

    const std::vector<int> bad(20, 4);
    CHECK_THROWS_MATCHES(net(x, 0.4, bad, cond), fmd::invalid_argument, names("labels"));
}

TEST_CASE("libtorch::Network: save and load through LibTorch's archive; bad modules and inputs get errors naming the argument", "[torch][errors]") {
    torch::manual_seed(2);
    Notebook module(2, 8, 1);
    fmd::libtorch::Network<float, Notebook> net(module, 2);
    const auto file = scratch("weights.pt");
    net.save(file.string());
    const Vector<float> saved = net.parameters();
    net.parameters().setConstant(0.5f);
    net.load(file.string());
    CHECK(net.parameters() == saved);

    // A file of another architecture is rejected and leaves the parameters as they were.
    Notebook wider(2, 16, 1);
    fmd::libtorch::Network<float, Notebook> other(wider, 2);
    const auto wrong = scratch("wider.pt");
    other.save(wrong.string());
    net.parameters().setConstant(0.25f);
    CHECK_THROWS_MATCHES(net.load(wrong.string()), fmd::io_error, names("path"));
    CHECK((net.parameters().array() == 0.25f).all());
    CHECK_THROWS_MATCHES(net.load(scratch("missing.pt").string()), fmd::io_error, names("path"));
    std::filesystem::remove(file);
    std::filesystem::remove(wrong);

    Matrix<float> x3(3, 4), x(2, 4), out(2, 4), out3(2, 5);
    x.setOnes();
    x3.setOnes();
    CHECK_THROWS_MATCHES(net(x3, 0.5, out), fmd::invalid_argument, names("x"));
    CHECK_THROWS_MATCHES(net(x, 0.5, out3), fmd::invalid_argument, names("out"));
    CHECK_THROWS_MATCHES(net.backward(x), fmd::invalid_argument, names("grad_out"));  // no forward yet

    Notebook dbl(2, 8, 1);
    dbl->to(torch::kFloat64);
    CHECK_THROWS_MATCHES((fmd::libtorch::Network<float, Notebook>(dbl, 2)), fmd::invalid_argument, names("module"));
    CHECK_THROWS_MATCHES((fmd::libtorch::Network<float, Transposed>(Transposed(), 2, 3)), fmd::invalid_argument, names("num_classes"));  // no labelled forward
    CHECK_THROWS_MATCHES((fmd::libtorch::Network<float, Shared>(Shared(), 2)), fmd::invalid_argument, names("module"));
    fmd::libtorch::Network<float, Transposed> transposed(Transposed(), 2);
    Matrix<float> x2(2, 3), out2(2, 3);
    x2.setOnes();
    CHECK_THROWS_MATCHES(transposed(x2, 0.5, out2), fmd::invalid_argument, names("module"));
}
