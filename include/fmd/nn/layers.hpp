#pragma once
// Building blocks of nn::MLP (docs/architecture.md): Linear layers viewed inside one
// contiguous parameter buffer, fused bias + activation kernels, and the time embeddings
// (sinusoidal, random Fourier features). A batch is dim x n, one column per sample.
//
// Everything here works in place on caller-owned storage and allocates nothing; the matrix
// products go through nn::gemm (fmd/nn/gemm.hpp: Eigen, or oneDNN where configured).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/parallel.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/nn/gemm.hpp>

namespace fmd::nn {

using Index = Eigen::Index;  ///< sizes and indices, as Eigen's

/// Element-wise non-linearity of the hidden blocks.
enum class Activation : std::uint8_t {
    relu,  ///< max(z, 0)
    silu,  ///< z·σ(z), σ the logistic sigmoid (a.k.a. swish)
};

/// A Linear layer y = W x + b seen inside a parameter (or gradient) buffer.
///
/// Storage at `data`: the weight W (out x in) in Eigen's column-major order, i.e. W(r, c) at
/// data[r + c·out], followed by the bias b (out). Copying a Linear copies the view, not the numbers.
template <class S>
struct Linear {
    Eigen::Map<Matrix<S>> weight;  ///< W, out × in, viewed in the buffer
    Eigen::Map<Vector<S>> bias;    ///< b, out entries, right after W

    /// Views the layer stored at `data` (size(out, in) scalars).
    Linear(S* data, Index out, Index in) : weight(data, out, in), bias(data + out * in, out) {}

    /// Number of scalars a layer with these dimensions occupies in a buffer: out·in + out.
    static constexpr Index size(Index out, Index in) { return out * in + out; }
    Index in_features() const { return weight.cols(); }   ///< in
    Index out_features() const { return weight.rows(); }  ///< out

    /// y = W x + b, x: in x n, y: out x n (y must not alias x).
    void forward(In<S> x, Out<S> y) const {
        gemm<S>(weight, x, y);
        y.colwise() += bias;
    }

    /// Parameter gradients for dL/dy = dy: grad.weight = dy xᵀ, grad.bias = Σ_columns dy.
    /// Overwrites `grad` (a Linear view into the gradient buffer with this layer's shape).
    static void backward(In<S> x, In<S> dy, Linear& grad) {
        gemm<S>(dy, Op::none, x, Op::transpose, grad.weight);
        grad.bias.noalias() = dy.rowwise().sum();
    }

    /// Input gradient dL/dx = Wᵀ dy (dx must not alias dy).
    void backward_input(In<S> dy, Out<S> dx) const { gemm<S>(weight, Op::transpose, dy, Op::none, dx); }
};

/// Columns per thread of the element-wise kernels: at least 32 K scalars, or a thread costs more than it saves.
constexpr Index column_grain(Index rows) { return std::max<Index>(1, (Index{1} << 15) / std::max<Index>(rows, 1)); }

/// a ← relu(a + b): bias added to every column, fused with the activation.
template <class S>
void relu_forward(const Eigen::Ref<const Vector<S>>& b, Out<S> a) {
    parallel_for(a.cols(), column_grain(a.rows()), [&](Index lo, Index hi) {
        for (Index j = lo; j < hi; ++j) a.col(j) = (a.col(j) + b).cwiseMax(S(0));
    });
}

/// g ← g ⊙ relu'(z), read off the stored output a = relu(z) (a > 0 ⇔ z > 0; relu'(0) = 0 as in PyTorch).
template <class S>
void relu_backward(In<S> a, Out<S> g) {
    parallel_for(a.cols(), column_grain(a.rows()), [&](Index lo, Index hi) {
        for (Index j = lo; j < hi; ++j) g.col(j) = (a.col(j).array() > S(0)).select(g.col(j), S(0));
    });
}

/// a ← silu(a + b) = z·σ(z) with z = a + b; sig ← σ(z), kept for the backward pass.
template <class S>
void silu_forward(const Eigen::Ref<const Vector<S>>& b, Out<S> a, Out<S> sig) {
    parallel_for(a.cols(), column_grain(a.rows()), [&](Index lo, Index hi) {
        for (Index j = lo; j < hi; ++j) {
            auto z = a.col(j).array();
            z += b.array();
            sig.col(j).array() = (S(1) + (-z).exp()).inverse();
            z *= sig.col(j).array();
        }
    });
}

/// a ← silu(a + b) without keeping σ (inference).
template <class S>
void silu_forward(const Eigen::Ref<const Vector<S>>& b, Out<S> a) {
    parallel_for(a.cols(), column_grain(a.rows()), [&](Index lo, Index hi) {
        for (Index j = lo; j < hi; ++j) {
            auto z = a.col(j).array();
            z += b.array();
            z /= S(1) + (-z).exp();
        }
    });
}

/// g ← g ⊙ silu'(z) with silu'(z) = σ + z σ (1 − σ) = σ + a (1 − σ), from a = silu(z) and sig = σ(z).
template <class S>
void silu_backward(In<S> a, In<S> sig, Out<S> g) {
    parallel_for(a.cols(), column_grain(a.rows()), [&](Index lo, Index hi) {
        for (Index j = lo; j < hi; ++j) g.col(j).array() *= sig.col(j).array() + a.col(j).array() * (S(1) - sig.col(j).array());
    });
}

/// Kind of time embedding.
enum class Embedding : std::uint8_t {
    sinusoidal,  ///< transformer-style: ω_k = scale·exp(−k·ln(max_period)/(half − 1))
    fourier,     ///< random Fourier features: ω_k = 2π f_k, f_k ~ N(0, sigma²) drawn once
};

/// Time-embedding part of an MLP configuration (C++20 designated initializers).
struct TimeConfig {
    Embedding kind = Embedding::sinusoidal;  ///< sinusoidal or random Fourier features
    Index channels = 0;          ///< embedding size; 0 → the MLP's width
    double scale = 10000.0;      ///< sinusoidal: t is multiplied by scale
    double max_period = 10000.0; ///< sinusoidal: base of the geometric frequency ladder
    double sigma = 16.0;         ///< fourier: standard deviation of the frequencies f_k
    /// fourier: the frequencies are drawn from fmd::Rng(seed), independently of the weights' generator,
    /// so the configuration alone (saved in checkpoints through MLP::describe()) restores them.
    std::uint64_t seed = 0;
    /// Field-wise equality.
    friend bool operator==(const TimeConfig&, const TimeConfig&) = default;
};

/// emb(t) = [sin(ω_0 t) … sin(ω_{h−1} t), cos(ω_0 t) … cos(ω_{h−1} t)] (+ one 0 if channels is odd),
/// h = channels / 2. Angles are formed and reduced in double even for float output, so
/// t·10000 loses nothing to float rounding (PyTorch's float32 embedding is off by ~1e-3 rad
/// there). Parameter-free: the frequencies are fixed.
class TimeEmbedding {
public:
    TimeEmbedding() = default;

    /// Sinusoidal embedding as in the DDPM / transformer papers and the seed notebook:
    /// emb(t) uses angles (scale·t)·exp(−k·ln(max_period)/(h − 1)), k = 0 … h−1 (frequency 1 when h = 1).
    static TimeEmbedding sinusoidal(Index channels, double scale = 10000.0, double max_period = 10000.0) {
        constexpr std::string_view where = "nn::TimeEmbedding::sinusoidal";
        if (channels < 2) detail::fail(where, "channels", "must be >= 2, got ", channels);
        if (!(scale > 0.0) || !std::isfinite(scale)) detail::fail(where, "scale", "must be finite and > 0, got ", scale);
        if (!(max_period > 0.0) || !std::isfinite(max_period))
            detail::fail(where, "max_period", "must be finite and > 0, got ", max_period);
        TimeEmbedding e;
        e.channels_ = channels;
        const Index h = channels / 2;
        e.omega_.resize(h);
        const double step = h > 1 ? std::log(max_period) / static_cast<double>(h - 1) : 0.0;
        for (Index k = 0; k < h; ++k) e.omega_(k) = scale * std::exp(-static_cast<double>(k) * step);
        return e;
    }

    /// Random Fourier features: angles 2π f_k t with f_k ~ N(0, sigma²), drawn from `rng` (fmd::fill_normal order).
    template <class G>
    static TimeEmbedding fourier(Index channels, double sigma, G& rng) {
        constexpr std::string_view where = "nn::TimeEmbedding::fourier";
        if (channels < 2) detail::fail(where, "channels", "must be >= 2, got ", channels);
        if (!(sigma > 0.0) || !std::isfinite(sigma)) detail::fail(where, "sigma", "must be finite and > 0, got ", sigma);
        TimeEmbedding e;
        e.channels_ = channels;
        e.omega_.resize(channels / 2);
        fill_normal(e.omega_, rng);
        e.omega_ *= 2.0 * std::numbers::pi * sigma;
        return e;
    }

    Index channels() const { return channels_; }  ///< output size of emb(t)
    Index half() const { return omega_.size(); }  ///< number of frequencies h = channels / 2
    /// Angular frequencies ω_k (half of them); part of a checkpoint for Fourier features.
    const Vector<double>& omega() const { return omega_; }
    /// Replaces the frequencies (restoring a checkpoint); the count must stay channels / 2.
    void set_omega(const Eigen::Ref<const Vector<double>>& omega) {
        if (omega.size() != omega_.size())
            detail::fail("nn::TimeEmbedding::set_omega", "omega", "must have ", omega_.size(), " entries, got ", omega.size());
        if (!omega.allFinite()) detail::fail("nn::TimeEmbedding::set_omega", "omega", "contains a non-finite value");
        omega_ = omega;
    }

    /// e ← emb(t) for one time (e has `channels` rows).
    template <class S>
    void embed(double t, Eigen::Ref<Vector<S>> e) const {
        embed_column<S>(t, e.data());
    }

    /// E ← [emb(t_0) … emb(t_{n−1})] for per-sample times t (1 x n); E is channels x n.
    template <class S>
    void embed(const RowIn<S>& t, Out<S> E) const {
        for (Index j = 0; j < t.cols(); ++j) embed_column<S>(static_cast<double>(t(j)), E.col(j).data());
    }

    /// dE ← d emb(t)/dt for every column, read off the embedding E = emb(t) itself:
    /// d sin(ω_k t)/dt = ω_k cos(ω_k t), d cos(ω_k t)/dt = −ω_k sin(ω_k t) (E, dE: channels x n).
    template <class S>
    void derivative(In<S> E, Out<S> dE) const {
        const Index h = half();
        const auto w = omega_.cast<S>().array();  // lazy: no temporary
        for (Index j = 0; j < E.cols(); ++j) {
            dE.col(j).head(h).array() = w * E.col(j).segment(h, h).array();
            dE.col(j).segment(h, h).array() = -w * E.col(j).head(h).array();
            if (channels_ % 2 == 1) dE(channels_ - 1, j) = S(0);
        }
    }

private:
    // One column at `out` (contiguous, `channels` entries). double: std::sin / std::cos of the
    // double angle. float: angles formed in double and reduced to [−π, π] there, then Eigen's
    // vectorized float sin / cos (|error| ≲ 2e-7 against the double result; t·10000 in float
    // alone would be off by ~1e-3 rad).
    template <class S>
    void embed_column(double t, S* out) const {
        const Index h = half();
        if constexpr (std::is_same_v<S, float>) {
            constexpr Index chunk = 64;
            constexpr double two_pi = 2.0 * std::numbers::pi, inv_two_pi = 1.0 / two_pi;
            Eigen::Array<double, chunk, 1> angle;
            Eigen::Array<float, chunk, 1> reduced;
            for (Index k = 0; k < h; k += chunk) {
                const Index len = std::min(chunk, h - k);
                auto a = angle.head(len);
                auto r = reduced.head(len);
                a = omega_.segment(k, len).array() * t;
                a -= two_pi * (a * inv_two_pi).round();
                r = a.template cast<float>();
                Eigen::Map<Eigen::ArrayXf>(out + k, len) = r.sin();
                Eigen::Map<Eigen::ArrayXf>(out + h + k, len) = r.cos();
            }
        } else {
            for (Index k = 0; k < h; ++k) {
                const double a = omega_(k) * t;
                out[k] = static_cast<S>(std::sin(a));
                out[h + k] = static_cast<S>(std::cos(a));
            }
        }
        if (channels_ % 2 == 1) out[channels_ - 1] = S(0);
    }

    Index channels_ = 0;
    Vector<double> omega_;
};

}  // namespace fmd::nn
