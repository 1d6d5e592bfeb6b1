#pragma once
// nn::MLP: the built-in time-conditioned network (docs/architecture.md), a C++ twin of
// the seed notebook's PyTorch model:
//
//   h   = Linear_in(x) + Linear_time(emb(t)) [+ Linear_interval(emb(r − t))] [+ E_y]
//                                                    emb: sinusoidal or random Fourier features
//   h   = act(Linear_k(h))          k = 1 … depth    act: ReLU or SiLU
//   out = Linear_out(h)
//
// All parameters live in ONE contiguous buffer and their gradients in another of the same
// layout, so optimizers, clipping and checkpoints work on flat vectors. Buffer order (each
// Linear = weight out x in column-major, then bias; see nn::Linear):
//
//   layer 0            Linear_in    width x dim
//   layer 1            Linear_time  width x channels
//   layer 1 + k        Linear_k     width x width      (k = 1 … depth)
//   layer depth + 2    Linear_out   out_dim x width
//   layer depth + 3    Linear_interval  width x channels   only when two_times
//   class table E      width x (num_classes + 1)   only when num_classes > 0 (no bias)
//
// Two-time networks (two_times = true, theory.md §9.4–§9.5): a flow map ū(x, t, r) of a current
// time t and a target time r, embedded as t and r − t like MeanFlow (the interval for shortcut
// models). The one-time calls evaluate r = t, the instantaneous velocity u_t(x) = ū(x, t, t).
// tangent() differentiates the last training forward along (v, ṫ, ṙ) in (x, t, r): one exact
// forward-mode pass that reuses the cached activations (d/dt ū along (u, 1, 0) for MeanFlow).
//
// Class conditioning (theory.md §6.9, §7.8): with num_classes = C > 0, column y of E is a learned
// embedding of class y added to h like the time branch; column C is the reserved null label ∅
// (null_label()), the unconditional model. The label overloads forward(x, t, labels, out),
// backward(…) and operator()(x, t, labels, out) take one label per column in [0, C]; the plain
// calls use ∅ for every column. With C = 0 (the default) nothing changes: same parameters, same
// layout, and the label overloads throw.
//
// Fourier time-embedding frequencies are not parameters: they come from fmd::Rng(time.seed), so the
// configuration (describe(), stored in checkpoints) restores them exactly.
//
// forward()/backward() train on per-sample times; operator()(x, t, out) evaluates at one time
// for the whole batch (the sampler's call, fmd::VectorField) and computes the time branch once.
// Workspaces grow to the largest batch seen: no allocation afterwards at that or any smaller
// batch size in this code (Eigen's GEMM may take its packing buffers from the heap for products larger than
// EIGEN_STACK_ALLOCATION_LIMIT, 128 KiB by default, e.g. width 512).
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/nn/layers.hpp>

namespace fmd::nn {

/// Architecture of an MLP (C++20 designated initializers); also its description for checkpoints
/// (MLP::config() returns it with every default resolved; compare with ==).
///
/// \code
///   fmd::nn::MLP<float> net({.dim = 2, .width = 512, .depth = 5}, rng);     // the seed notebook's model
///   fmd::nn::MLP<double> small({.dim = 3, .width = 64, .depth = 3, .activation = fmd::nn::Activation::silu,
///                               .time = {.kind = fmd::nn::Embedding::fourier, .sigma = 4.0}}, rng);
/// \endcode
struct MLPConfig {
    Index dim = 2;          ///< input dimension (x is dim x n)
    Index out_dim = 0;      ///< output dimension; 0 → dim
    Index width = 512;      ///< hidden width
    Index depth = 5;        ///< number of hidden Linear + activation blocks (>= 0)
    Activation activation = Activation::relu;  ///< non-linearity of the hidden blocks
    TimeConfig time = {};   ///< time embedding (channels 0 → width)
    Index num_classes = 0;  ///< class labels 0 … C − 1 plus ∅ = C; 0 = unconditional
    bool two_times = false; ///< a second time input r (flow map ū(x, t, r)); see the header comment
    /// Field-wise equality.
    friend bool operator==(const MLPConfig&, const MLPConfig&) = default;
};

/// Argument checks shared by nn::MLP's calls and nn::FrozenMLP (fmd/nn/dnnl.hpp), which takes the same batches.
namespace mlp_checks {

/// x must be a non-empty dim x n batch and out out_dim x n; else fmd::invalid_argument naming 'x' or 'out'.
template <class S>
void batch(std::string_view where, const MLPConfig& c, const In<S>& x, const Out<S>& out) {
    if (x.cols() == 0) detail::fail(where, "x", "must be a non-empty ", c.dim, " x n batch, got ", x.rows(), " x 0");
    if (x.rows() != c.dim) detail::fail(where, "x", "must have ", c.dim, " rows (dim), got ", x.rows(), " x ", x.cols());
    if (out.rows() != c.out_dim || out.cols() != x.cols())
        detail::fail(where, "out", "must be ", c.out_dim, " x ", x.cols(), ", got ", out.rows(), " x ", out.cols());
}

/// Labels, when given, must be one per column, each in [0, num_classes] (num_classes = ∅); else
/// fmd::invalid_argument naming 'labels'.
inline void labels(std::string_view where, Labels labels, Index n, Index num_classes) {
    if (labels.empty()) return;
    if (static_cast<Index>(labels.size()) != n) detail::fail(where, "labels", "must hold one label per column of x (", n, "), got ", labels.size());
    for (std::size_t j = 0; j < labels.size(); ++j)
        if (labels[j] < 0 || labels[j] > num_classes)
            detail::fail(where, "labels", "must lie in [0, ", num_classes, "] (", num_classes, " = null label), got ", labels[j], " at column ", j);
}

}  // namespace mlp_checks

/// Time-conditioned multilayer perceptron u_θ(x, t) (optionally with a class embedding and a second
/// time r) on one flat parameter buffer, with its own backward pass and forward-mode jvp / tangent;
/// a Network, ConditionalNetwork or TwoTimeNetwork depending on MLPConfig. Layout and passes: the
/// header comment.
template <class S>
class MLP {
public:
    using Scalar = S;  ///< float or double
    using Config = MLPConfig;  ///< the configuration type

    /// Builds the network and initializes it like PyTorch's nn.Linear from `rng`
    /// (see reset_parameters); Fourier frequencies, if any, come from fmd::Rng(config.time.seed).
    template <std::uniform_random_bit_generator G>
    MLP(const MLPConfig& config, G& rng) : config_(resolve(config)) {
        build(rng);
    }
    /// Same, from fmd::Rng(seed): deterministic, and the same bits for the same seed everywhere.
    explicit MLP(const MLPConfig& config, std::uint64_t seed = 0) : config_(resolve(config)) {
        Rng rng(seed);
        build(rng);
    }

    /// PyTorch's default nn.Linear init: every weight and bias of a layer ~ U(−1/√fan_in, 1/√fan_in),
    /// drawn in buffer order from `rng` (uniform01); then the class table ~ U(−1, 1) (a Linear on a
    /// one-hot input: one active input, fan-in 1). Gradients are zeroed.
    template <std::uniform_random_bit_generator G>
    void reset_parameters(G& rng) {
        for (const Shape& s : shapes_) {
            const double bound = 1.0 / std::sqrt(static_cast<double>(s.cols));
            S* p = params_.data() + s.offset;
            const Index count = Linear<S>::size(s.rows, s.cols);
            for (Index i = 0; i < count; ++i) p[i] = static_cast<S>(bound * (2.0 * uniform01(rng) - 1.0));
        }
        S* e = params_.data() + table_offset();
        for (Index i = 0; i < table_size(config_); ++i) e[i] = static_cast<S>(2.0 * uniform01(rng) - 1.0);
        grads_.setZero();
    }

    /// The resolved architecture (out_dim and time.channels filled in).
    const MLPConfig& config() const { return config_; }

    /// Number of parameters of a configuration without building it (seed notebook: 1,578,498).
    static Index parameter_count(const MLPConfig& config) {
        const MLPConfig c = resolve(config);
        return Linear<S>::size(c.width, c.dim) + Linear<S>::size(c.width, c.time.channels) * (c.two_times ? 2 : 1) +
               c.depth * Linear<S>::size(c.width, c.width) + Linear<S>::size(c.out_dim, c.width) + table_size(c);
    }
    /// Number of parameters of this network.
    Index parameter_count() const { return params_.size(); }

    /// dim, the rows of x.
    Index input_dim() const { return config_.dim; }
    /// out_dim, the rows of the output.
    Index output_dim() const { return config_.out_dim; }
    /// The hidden width.
    Index width() const { return config_.width; }
    /// The number of hidden blocks.
    Index depth() const { return config_.depth; }
    /// C, the number of classes (0: unconditional).
    Index num_classes() const { return config_.num_classes; }
    /// Whether the network takes a second time r (a flow map ū(x, t, r)).
    bool two_times() const { return config_.two_times; }
    /// The reserved null label ∅ = num_classes (the unconditional model; meaningful when num_classes > 0).
    int null_label() const { return static_cast<int>(config_.num_classes); }

    /// One line naming every architectural choice (stored in checkpoints by train::Trainer and
    /// compared on restore), e.g. "nn::MLP(dim=2, out_dim=2, width=64, depth=3, activation=relu,
    /// time=sinusoidal(channels=64, scale=10000, max_period=10000), num_classes=0)".
    std::string describe() const {
        const MLPConfig& c = config_;
        std::ostringstream os;
        os.precision(17);
        os << "nn::MLP(dim=" << c.dim << ", out_dim=" << c.out_dim << ", width=" << c.width << ", depth=" << c.depth
           << ", activation=" << (c.activation == Activation::relu ? "relu" : "silu") << ", time=";
        if (c.time.kind == Embedding::sinusoidal)
            os << "sinusoidal(channels=" << c.time.channels << ", scale=" << c.time.scale << ", max_period=" << c.time.max_period << ")";
        else
            os << "fourier(channels=" << c.time.channels << ", sigma=" << c.time.sigma << ", seed=" << c.time.seed << ")";
        os << ", num_classes=" << c.num_classes;
        if (c.two_times) os << ", two_times=1";  // absent otherwise: older checkpoints stay valid
        os << ")";
        return os.str();
    }

    /// The flat parameter buffer (layout in the header comment).
    Eigen::Map<Vector<S>> parameters() { return {params_.data(), params_.size()}; }
    /// Read-only view of the parameter buffer.
    Eigen::Map<const Vector<S>> parameters() const { return {params_.data(), params_.size()}; }
    /// The flat gradient buffer, same layout; backward() overwrites it.
    Eigen::Map<Vector<S>> gradients() { return {grads_.data(), grads_.size()}; }
    /// Read-only view of the gradient buffer.
    Eigen::Map<const Vector<S>> gradients() const { return {grads_.data(), grads_.size()}; }

    /// Number of Linear layers: depth + 3 (+ 1 with two_times). Index constants for layer() / gradient():
    Index layer_count() const { return static_cast<Index>(shapes_.size()); }
    static constexpr Index input_layer = 0;  ///< Linear_in, on x
    static constexpr Index time_layer = 1;  ///< Linear_time, on emb(t)
    static constexpr Index hidden_layer(Index k) { return 1 + k; }  ///< k = 1 … depth
    /// Linear_out: depth + 2.
    Index output_layer() const { return config_.depth + 2; }
    /// Linear_interval, the embedding of r − t (two-time networks only).
    Index interval_layer() const {
        if (!config_.two_times) detail::fail("nn::MLP::interval_layer", "two_times", "is false: this network has no second time input");
        return config_.depth + 3;
    }
    /// Offset of layer i's weight in the flat buffers.
    Index layer_offset(Index i) const { return shape(i).offset; }
    /// Offset of the class table E (width x (num_classes + 1), column-major) in the flat buffers:
    /// right after Linear_out, so unconditional layouts are unchanged.
    Index class_table_offset() const { return table_offset(); }
    /// Views of the class table in the parameter / gradient buffer (width x 0 when unconditional).
    Eigen::Map<Matrix<S>> class_table() { return {params_.data() + table_offset(), config_.width, table_cols(config_)}; }
    /// View of the class table's gradient.
    Eigen::Map<Matrix<S>> class_table_gradient() { return {grads_.data() + table_offset(), config_.width, table_cols(config_)}; }

    /// Views of layer i (0 … depth + 2) in the parameter / gradient buffer.
    Linear<S> layer(Index i) {
        const Shape& s = shape(i);
        return {params_.data() + s.offset, s.rows, s.cols};
    }
    /// View of layer i's gradient.
    Linear<S> gradient(Index i) {
        const Shape& s = shape(i);
        return {grads_.data() + s.offset, s.rows, s.cols};
    }

    /// The time embedding (its frequencies belong in a checkpoint for Fourier features).
    const TimeEmbedding& time_embedding() const { return embedding_; }
    /// Mutable time embedding (restoring Fourier frequencies).
    TimeEmbedding& time_embedding() { return embedding_; }

    /// Training forward pass with per-sample times t (1 x n); caches what backward() needs.
    /// x: dim x n, out: out_dim x n (out may be x itself when the dimensions agree).
    /// A conditional network (num_classes > 0) evaluates u(x|∅) for every column; a two-time
    /// network evaluates r = t.
    void forward(In<S> x, const RowIn<S>& t, Out<S> out) { forward_impl(x, t, nullptr, Labels{}, out); }
    /// Same with class labels y_j ∈ [0, num_classes] (num_classes = ∅), one per column.
    void forward(In<S> x, const RowIn<S>& t, Labels labels, Out<S> out) {
        require_conditional("nn::MLP::forward");
        forward_impl(x, t, nullptr, labels, out);
    }
    /// Two-time training forward ū(x_j, t_j, r_j) (two_times networks; t, r: 1 x n).
    void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Out<S> out) {
        require_two_times("nn::MLP::forward");
        forward_impl(x, t, &r, Labels{}, out);
    }
    /// Same with class labels.
    void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Labels labels, Out<S> out) {
        require_two_times("nn::MLP::forward");
        require_conditional("nn::MLP::forward");
        forward_impl(x, t, &r, labels, out);
    }

private:
    void forward_impl(In<S> x, const RowIn<S>& t, const RowIn<S>* r, Labels labels, Out<S> out) {
        constexpr std::string_view where = "nn::MLP::forward";
        check_batch(where, x, out);
        if (t.cols() != x.cols()) detail::fail(where, "t", "must be 1 x ", x.cols(), " (one time per column of x), got 1 x ", t.cols());
        if (!t.allFinite()) detail::fail(where, "t", "contains a non-finite value (NaN or Inf)");
        if (r != nullptr) {
            if (r->cols() != x.cols()) detail::fail(where, "r", "must be 1 x ", x.cols(), " (one target time per column of x), got 1 x ", r->cols());
            if (!r->allFinite()) detail::fail(where, "r", "contains a non-finite value (NaN or Inf)");
        }
        check_labels(where, labels, x.cols());
        const Index n = x.cols();
        ensure_training(n);

        x_.leftCols(n) = x;
        embedding_.embed<S>(t, emb_.leftCols(n));
        Linear<S> in = layer(input_layer), tl = layer(time_layer);
        auto h = act_[0].leftCols(n);
        gemm<S>(tl.weight, emb_.leftCols(n), h);
        gemm<S>(in.weight, x_.leftCols(n), h, S(1), S(1));
        bias0_ = in.bias + tl.bias;
        if (config_.two_times) {  // + Linear_interval(emb(r − t)); r − t = 0 without r
            if (r != nullptr) d_.leftCols(n) = *r - t;
            else d_.leftCols(n).setZero();
            embedding_.embed<S>(RowIn<S>(d_.leftCols(n)), emb2_.leftCols(n));
            Linear<S> il = layer(interval_layer());
            gemm<S>(il.weight, emb2_.leftCols(n), h, S(1), S(1));
            bias0_ += il.bias;
        }
        h.colwise() += bias0_;
        if (config_.num_classes > 0) {
            const auto table = class_table();
            for (Index j = 0; j < n; ++j) {
                const int y = labels.empty() ? null_label() : labels[static_cast<std::size_t>(j)];
                labels_[static_cast<std::size_t>(j)] = y;
                h.col(j) += table.col(y);
            }
        }
        for (Index k = 1; k <= config_.depth; ++k) {
            const auto ks = static_cast<std::size_t>(k);
            Linear<S> l = layer(hidden_layer(k));
            auto a = act_[ks].leftCols(n);
            gemm<S>(l.weight, act_[ks - 1].leftCols(n), a);
            if (config_.activation == Activation::relu)
                relu_forward<S>(l.bias, a);
            else
                silu_forward<S>(l.bias, a, sig_[ks - 1].leftCols(n));
        }
        layer(output_layer()).forward(act_.back().leftCols(n), out);
        has_forward_ = true;
    }

public:

    /// Backward pass of the last forward() (labelled or not: the labels are remembered):
    /// overwrites gradients() with ∂L/∂θ for ∂L/∂out = grad_out.
    void backward(In<S> grad_out) { backward_impl(grad_out, nullptr); }
    /// Same, and writes ∂L/∂x (dim x n) into grad_x.
    void backward(In<S> grad_out, Out<S> grad_x) {
        if (grad_x.rows() != config_.dim || grad_x.cols() != n_train_)
            detail::fail("nn::MLP::backward", "grad_x", "must be ", config_.dim, " x ", n_train_, ", got ", grad_x.rows(), " x ",
                         grad_x.cols());
        backward_impl(grad_out, &grad_x);
    }

    /// Sampling call (fmd::VectorField): all columns share time t. The time branch
    /// Linear_time(emb(t)) + biases is one width-vector added to every column.
    /// A conditional network evaluates u(x|∅).
    void operator()(In<S> x, double t, Out<S> out) { eval_impl(x, t, t, Labels{}, out); }
    /// Conditional sampling call (fmd::ConditionalField): u_t(x|y_j) for column j, y_j ∈ [0, num_classes].
    /// fmd::Guided batches [y, ∅] through this in one call.
    void operator()(In<S> x, double t, Labels labels, Out<S> out) {
        require_conditional("nn::MLP::operator()");
        eval_impl(x, t, t, labels, out);
    }
    /// Flow-map call (fmd::FlowMap, two-time networks): ū(x, t, r) for the whole batch.
    void operator()(In<S> x, double t, double r, Out<S> out) {
        require_two_times("nn::MLP::operator()");
        eval_impl(x, t, r, Labels{}, out);
    }
    /// Conditional flow-map call: ū(x_j, t, r | y_j).
    void operator()(In<S> x, double t, double r, Labels labels, Out<S> out) {
        require_two_times("nn::MLP::operator()");
        require_conditional("nn::MLP::operator()");
        eval_impl(x, t, r, labels, out);
    }

    /// Forward-mode derivative of the last training forward() along (v, ṫ, ṙ) in (x, t, r):
    /// out_j = ∂ₓū v_j + ∂ₜū ṫ + ∂ᵣū ṙ at (x_j, t_j, r_j) (labels are constants). Reuses the cached
    /// activations, so it costs one pass of matrix products; the cache stays valid for backward().
    /// The time tangents ride through the embeddings' exact derivatives, d/dt sin(ωt) = ω cos(ωt).
    /// A one-time network has no r: ṙ must be 0. v: dim x n like the forward's x; out: out_dim x n.
    void tangent(In<S> v, double t_dot, double r_dot, Out<S> out) {
        constexpr std::string_view where = "nn::MLP::tangent";
        if (!has_forward_) detail::fail(where, "v", "needs a preceding forward() (training pass)");
        const Index n = n_train_;
        if (v.rows() != config_.dim || v.cols() != n)
            detail::fail(where, "v", "must be ", config_.dim, " x ", n, " like the last forward's x, got ", v.rows(), " x ", v.cols());
        if (out.rows() != config_.out_dim || out.cols() != n)
            detail::fail(where, "out", "must be ", config_.out_dim, " x ", n, ", got ", out.rows(), " x ", out.cols());
        if (!std::isfinite(t_dot)) detail::fail(where, "t_dot", "must be finite, got ", t_dot);
        if (!std::isfinite(r_dot)) detail::fail(where, "r_dot", "must be finite, got ", r_dot);
        if (!config_.two_times && r_dot != 0.0) detail::fail(where, "r_dot", "must be 0 for a one-time network, got ", r_dot);
        ensure_tangent(n);
        ensure_tangent_training(n);

        Matrix<S>* ta = &j0_;
        Matrix<S>* tb = &j1_;
        gemm<S>(layer(input_layer).weight, v, ta->leftCols(n));
        if (t_dot != 0.0) {
            embedding_.derivative<S>(emb_.leftCols(n), demb_.leftCols(n));
            gemm<S>(layer(time_layer).weight, demb_.leftCols(n), ta->leftCols(n), S(t_dot), S(1));
        }
        if (config_.two_times && r_dot - t_dot != 0.0) {  // d/dε emb(r − t) = emb'(r − t)(ṙ − ṫ)
            embedding_.derivative<S>(emb2_.leftCols(n), demb_.leftCols(n));
            gemm<S>(layer(interval_layer()).weight, demb_.leftCols(n), ta->leftCols(n), S(r_dot - t_dot), S(1));
        }
        for (Index k = 1; k <= config_.depth; ++k) {
            const auto ks = static_cast<std::size_t>(k);
            gemm<S>(layer(hidden_layer(k)).weight, ta->leftCols(n), tb->leftCols(n));
            if (config_.activation == Activation::relu)
                relu_backward<S>(act_[ks].leftCols(n), tb->leftCols(n));  // ⊙ 1[z > 0]
            else
                silu_backward<S>(act_[ks].leftCols(n), sig_[ks - 1].leftCols(n), tb->leftCols(n));  // ⊙ silu'(z)
            std::swap(ta, tb);
        }
        gemm<S>(layer(output_layer()).weight, ta->leftCols(n), out);
    }

    /// Forward-mode Jacobian–vector product at one time: out = (∂u_t/∂x)(x) v, column by column
    /// (fmd::JvpField; exact divergences for likelihoods, theory.md §8.4). The tangent rides
    /// along the sampling pass: ṫa ← W ṫa through every linear map, ⊙ act'(z) at every
    /// activation (relu'(0) = 0), no biases; about twice the cost of operator(). A conditional
    /// network differentiates u(x|∅). v: dim x n like x; out: out_dim x n (may alias x or v).
    void jvp(In<S> x, double t, In<S> v, Out<S> out) {
        constexpr std::string_view where = "nn::MLP::jvp";
        check_batch(where, x, out);
        if (v.rows() != x.rows() || v.cols() != x.cols())
            detail::fail(where, "v", "must be ", x.rows(), " x ", x.cols(), " like x, got ", v.rows(), " x ", v.cols());
        if (!std::isfinite(t)) detail::fail(where, "t", "must be finite, got ", t);
        const Index n = x.cols();
        ensure_eval(n);
        ensure_tangent(n);

        time_vector(t, t);
        Linear<S> in = layer(input_layer);
        if (config_.num_classes > 0) tvec_ += class_table().col(null_label());
        Matrix<S>* a = &e0_;
        Matrix<S>* b = &e1_;
        Matrix<S>* ta = &j0_;
        Matrix<S>* tb = &j1_;
        gemm<S>(in.weight, x, a->leftCols(n));
        a->leftCols(n).colwise() += tvec_;
        gemm<S>(in.weight, v, ta->leftCols(n));
        for (Index k = 1; k <= config_.depth; ++k) {
            Linear<S> l = layer(hidden_layer(k));
            gemm<S>(l.weight, a->leftCols(n), b->leftCols(n));
            gemm<S>(l.weight, ta->leftCols(n), tb->leftCols(n));
            if (config_.activation == Activation::relu) {
                relu_forward<S>(l.bias, b->leftCols(n));
                relu_backward<S>(b->leftCols(n), tb->leftCols(n));  // ⊙ 1[z > 0], read off relu(z)
            } else {
                for (Index j = 0; j < n; ++j)  // silu'(z) = σ + silu(z)(1 − σ)
                    for (Index i = 0; i < b->rows(); ++i) {
                        const S z = (*b)(i, j) + l.bias(i), sig = S(1) / (S(1) + std::exp(-z));
                        (*b)(i, j) = z * sig;
                        (*tb)(i, j) *= sig + z * sig * (S(1) - sig);
                    }
            }
            std::swap(a, b);
            std::swap(ta, tb);
        }
        gemm<S>(layer(output_layer()).weight, ta->leftCols(n), out);
    }

private:
    void ensure_tangent(Index n) {
        if (n <= cap_tangent_) return;
        j0_.resize(config_.width, n);
        j1_.resize(config_.width, n);
        cap_tangent_ = n;
    }

    void ensure_tangent_training(Index n) {
        if (n <= cap_tangent_training_) return;
        demb_.resize(config_.time.channels, n);
        cap_tangent_training_ = n;
    }

    // tvec_ ← Linear_time(emb(t)) + b_in [+ Linear_interval(emb(r − t))]: the part of h shared by the batch.
    void time_vector(double t, double r) {
        Linear<S> in = layer(input_layer), tl = layer(time_layer);
        embedding_.embed<S>(t, emb1_);
        gemm<S>(tl.weight, emb1_, tvec_);
        tvec_ += tl.bias + in.bias;
        if (config_.two_times) {
            Linear<S> il = layer(interval_layer());
            embedding_.embed<S>(r - t, emb1_);
            gemm<S>(il.weight, emb1_, tvec_, S(1), S(1));
            tvec_ += il.bias;
        }
    }

    void eval_impl(In<S> x, double t, double r, Labels labels, Out<S> out) {
        constexpr std::string_view where = "nn::MLP::operator()";
        check_batch(where, x, out);
        if (!std::isfinite(t)) detail::fail(where, "t", "must be finite, got ", t);
        if (!std::isfinite(r)) detail::fail(where, "r", "must be finite, got ", r);
        check_labels(where, labels, x.cols());
        const Index n = x.cols();
        ensure_eval(n);

        time_vector(t, r);
        Linear<S> in = layer(input_layer);
        Matrix<S>* a = &e0_;
        Matrix<S>* b = &e1_;
        gemm<S>(in.weight, x, a->leftCols(n));
        a->leftCols(n).colwise() += tvec_;
        if (config_.num_classes > 0) {
            const auto table = class_table();
            for (Index j = 0; j < n; ++j) a->col(j) += table.col(labels.empty() ? null_label() : labels[static_cast<std::size_t>(j)]);
        }
        for (Index k = 1; k <= config_.depth; ++k) {
            Linear<S> l = layer(hidden_layer(k));
            gemm<S>(l.weight, a->leftCols(n), b->leftCols(n));
            if (config_.activation == Activation::relu)
                relu_forward<S>(l.bias, b->leftCols(n));
            else
                silu_forward<S>(l.bias, b->leftCols(n));
            std::swap(a, b);
        }
        layer(output_layer()).forward(a->leftCols(n), out);
    }

public:
    /// Frees the workspaces (they grow to the largest batch seen and are reused for smaller ones).
    void release_workspaces() {
        for (Matrix<S>* m : {&x_, &emb_, &emb2_, &demb_, &g0_, &g1_, &e0_, &e1_, &j0_, &j1_}) m->resize(0, 0);
        d_.resize(0);
        for (auto& m : act_) m.resize(0, 0);
        for (auto& m : sig_) m.resize(0, 0);
        labels_ = {};
        cap_train_ = cap_eval_ = cap_tangent_ = cap_tangent_training_ = 0;
        n_train_ = -1;
        has_forward_ = false;
    }

private:
    struct Shape {
        Index offset, rows, cols;
    };

    static MLPConfig resolve(MLPConfig c) {
        constexpr std::string_view where = "nn::MLP";
        if (c.dim < 1) detail::fail(where, "dim", "must be >= 1, got ", c.dim);
        if (c.out_dim < 0) detail::fail(where, "out_dim", "must be >= 1 (or 0 for dim), got ", c.out_dim);
        if (c.width < 1) detail::fail(where, "width", "must be >= 1, got ", c.width);
        if (c.depth < 0) detail::fail(where, "depth", "must be >= 0, got ", c.depth);
        if (c.activation != Activation::relu && c.activation != Activation::silu)
            detail::fail(where, "activation", "must be Activation::relu or Activation::silu");
        if (c.out_dim == 0) c.out_dim = c.dim;
        if (c.time.channels == 0) c.time.channels = c.width;
        if (c.time.channels < 2) detail::fail(where, "time.channels", "must be >= 2 (or 0 for width), got ", c.time.channels);
        if (c.num_classes < 0 || c.num_classes >= (Index(1) << 30))
            detail::fail(where, "num_classes", "must lie in [0, 2^30) (0 = unconditional), got ", c.num_classes);
        {  // the parameter count in floating point first: its Index arithmetic must not overflow
            const long double w = static_cast<long double>(c.width), ch = static_cast<long double>(c.time.channels);
            const long double count = w * (static_cast<long double>(c.dim) + 1) + w * (ch + 1) * (c.two_times ? 2 : 1) +
                                      static_cast<long double>(c.depth) * w * (w + 1) +
                                      static_cast<long double>(c.out_dim) * (w + 1) + w * static_cast<long double>(table_cols(c));
            if (!(count < static_cast<long double>(Index(1) << 52)))
                detail::fail(where, "width", "and depth give ", static_cast<double>(count), " parameters, more than 2^52 (width ", c.width,
                             ", depth ", c.depth, ")");
        }
        if (c.time.kind == Embedding::sinusoidal) {
            if (!(c.time.scale > 0.0) || !std::isfinite(c.time.scale))
                detail::fail(where, "time.scale", "must be finite and > 0, got ", c.time.scale);
            if (!(c.time.max_period > 0.0) || !std::isfinite(c.time.max_period))
                detail::fail(where, "time.max_period", "must be finite and > 0, got ", c.time.max_period);
        } else if (c.time.kind == Embedding::fourier) {
            if (!(c.time.sigma > 0.0) || !std::isfinite(c.time.sigma))
                detail::fail(where, "time.sigma", "must be finite and > 0, got ", c.time.sigma);
        } else {
            detail::fail(where, "time.kind", "must be Embedding::sinusoidal or Embedding::fourier");
        }
        return c;
    }

    static Index table_cols(const MLPConfig& c) { return c.num_classes > 0 ? c.num_classes + 1 : 0; }
    static Index table_size(const MLPConfig& c) { return c.width * table_cols(c); }
    Index table_offset() const { return params_.size() - table_size(config_); }

    void require_two_times(std::string_view where) const {
        if (!config_.two_times) detail::fail(where, "r", "needs a two-time network (MLPConfig::two_times = true); this one takes t only");
    }
    void require_conditional(std::string_view where) const {
        if (config_.num_classes == 0) detail::fail(where, "labels", "need a conditional network (MLPConfig::num_classes > 0); this one is unconditional");
    }
    void check_labels(std::string_view where, Labels labels, Index n) const {
        mlp_checks::labels(where, labels, n, config_.num_classes);
    }

    template <class G>
    void build(G& rng) {
        const MLPConfig& c = config_;
        Rng frequencies(c.time.seed);
        embedding_ = c.time.kind == Embedding::sinusoidal ? TimeEmbedding::sinusoidal(c.time.channels, c.time.scale, c.time.max_period)
                                                          : TimeEmbedding::fourier(c.time.channels, c.time.sigma, frequencies);
        Index offset = 0;
        auto add = [&](Index rows, Index cols) {
            shapes_.push_back({offset, rows, cols});
            offset += Linear<S>::size(rows, cols);
        };
        shapes_.reserve(static_cast<std::size_t>(c.depth + 4));
        add(c.width, c.dim);
        add(c.width, c.time.channels);
        for (Index k = 0; k < c.depth; ++k) add(c.width, c.width);
        add(c.out_dim, c.width);
        if (c.two_times) add(c.width, c.time.channels);
        offset += table_size(c);
        params_.resize(offset);
        grads_.resize(offset);
        act_.resize(static_cast<std::size_t>(c.depth + 1));
        if (c.activation == Activation::silu) sig_.resize(static_cast<std::size_t>(c.depth));
        bias0_.resize(c.width);
        tvec_.resize(c.width);
        emb1_.resize(c.time.channels);
        reset_parameters(rng);
    }

    const Shape& shape(Index i) const {
        if (i < 0 || i >= layer_count()) detail::fail("nn::MLP::layer", "i", "must lie in [0, ", layer_count() - 1, "], got ", i);
        return shapes_[static_cast<std::size_t>(i)];
    }

    void check_batch(std::string_view where, const In<S>& x, const Out<S>& out) const { mlp_checks::batch<S>(where, config_, x, out); }

    // Workspaces grow to the largest batch seen (capacity in columns) and are used through
    // leftCols(n): a smaller batch (an epoch's remainder, a sampler's last chunk) allocates nothing.
    void ensure_training(Index n) {
        n_train_ = n;
        has_forward_ = false;
        if (n <= cap_train_) return;
        const MLPConfig& c = config_;
        x_.resize(c.dim, n);
        emb_.resize(c.time.channels, n);
        if (c.two_times) {
            d_.resize(n);
            emb2_.resize(c.time.channels, n);
        }
        for (auto& a : act_) a.resize(c.width, n);
        for (auto& s : sig_) s.resize(c.width, n);
        if (c.num_classes > 0) labels_.resize(static_cast<std::size_t>(n));
        g0_.resize(c.width, n);
        g1_.resize(c.width, n);
        cap_train_ = n;
    }
    void ensure_eval(Index n) {
        if (n <= cap_eval_) return;
        e0_.resize(config_.width, n);
        e1_.resize(config_.width, n);
        cap_eval_ = n;
    }

    void backward_impl(In<S> grad_out, Out<S>* grad_x) {
        constexpr std::string_view where = "nn::MLP::backward";
        if (!has_forward_) detail::fail(where, "grad_out", "needs a preceding forward() (training pass)");
        if (grad_out.rows() != config_.out_dim || grad_out.cols() != n_train_)
            detail::fail(where, "grad_out", "must be ", config_.out_dim, " x ", n_train_, " (the last forward's out), got ",
                         grad_out.rows(), " x ", grad_out.cols());
        const Index depth = config_.depth, n = n_train_;

        // Output layer.
        Linear<S> lo = layer(output_layer()), go = gradient(output_layer());
        Linear<S>::backward(act_.back().leftCols(n), grad_out, go);
        Matrix<S>* g = &g0_;  // ∂L/∂(output of the current block)
        Matrix<S>* spare = &g1_;
        lo.backward_input(grad_out, g->leftCols(n));

        // Hidden blocks, last to first: g ← g ⊙ act'(z), then parameter and input gradients.
        for (Index k = depth; k >= 1; --k) {
            const auto ks = static_cast<std::size_t>(k);
            if (config_.activation == Activation::relu)
                relu_backward<S>(act_[ks].leftCols(n), g->leftCols(n));
            else
                silu_backward<S>(act_[ks].leftCols(n), sig_[ks - 1].leftCols(n), g->leftCols(n));
            Linear<S> gl = gradient(hidden_layer(k));
            Linear<S>::backward(act_[ks - 1].leftCols(n), g->leftCols(n), gl);
            layer(hidden_layer(k)).backward_input(g->leftCols(n), spare->leftCols(n));
            std::swap(g, spare);
        }

        // h = Linear_in(x) + Linear_time(emb): both see ∂L/∂h.
        Linear<S> gt = gradient(time_layer), gi = gradient(input_layer);
        Linear<S>::backward(emb_.leftCols(n), g->leftCols(n), gt);
        Linear<S>::backward(x_.leftCols(n), g->leftCols(n), gi);
        if (config_.two_times) {
            Linear<S> gr = gradient(interval_layer());
            Linear<S>::backward(emb2_.leftCols(n), g->leftCols(n), gr);
        }
        if (config_.num_classes > 0) {  // ∂L/∂E_y = Σ_{j: y_j = y} ∂L/∂h_j
            auto ge = class_table_gradient();
            ge.setZero();
            for (Index j = 0; j < n; ++j) ge.col(labels_[static_cast<std::size_t>(j)]) += g->col(j);
        }
        if (grad_x != nullptr) layer(input_layer).backward_input(g->leftCols(n), *grad_x);
    }

    MLPConfig config_;
    TimeEmbedding embedding_;
    std::vector<Shape> shapes_;
    Vector<S> params_, grads_;

    // Training cache: batch size of the last forward, capacity in columns.
    Index n_train_ = -1, cap_train_ = 0;
    bool has_forward_ = false;
    Matrix<S> x_, emb_;             // input copy, time embedding (channels x n)
    Row<S> d_;                      // intervals r − t of the last forward
    Matrix<S> emb2_, demb_;         // embedding of r − t; an embedding's derivative (tangent())
    std::vector<Matrix<S>> act_;    // act_[0] = h, act_[k] = output of block k
    std::vector<Matrix<S>> sig_;    // SiLU: σ(z_k) of block k + 1
    Matrix<S> g0_, g1_;             // backward ping-pong
    Vector<S> bias0_;
    std::vector<int> labels_;       // labels of the last forward (∅ for unlabelled calls)

    // Sampling workspace, separate so sampling between forward and backward is safe.
    Index cap_eval_ = 0, cap_tangent_ = 0, cap_tangent_training_ = 0;
    Matrix<S> e0_, e1_;
    Matrix<S> j0_, j1_;  // jvp tangents
    Vector<S> emb1_, tvec_;
};

}  // namespace fmd::nn
