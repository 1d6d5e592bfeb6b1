#pragma once
// EndpointFlowMap: a two-time network that predicts an endpoint D(x, t, r), seen as the flow map
//   ū(x, t, r) = (D(x, t, r) − x)/(1 − t),   so   X_r = x + (r − t)/(1 − t)·(D − x),
// for the linear path (x_t = t z + (1 − t) ε). At r = t, D is the x1-prediction E[z | x_t] and ū
// the velocity (theory.md §5.4); at r = 1 one jump lands on D. An MLP without skip connections
// predicts a clean image more easily than a velocity, which must cancel the noise in x (example 03
// measured the difference as speckle), so image models train MeanFlow through this wrapper.
//
// It is itself a TwoTimeNetwork with tangent(), so flowmap::MeanFlow and flowmap::Shortcut train it
// and sample_flow_map samples it; the parameters are the inner network's. Every t must be < 1
// (train with a time sampler bounded away from 1, e.g. time_sampler::LogitNormal's `hi`).
#include <string>
#include <string_view>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/nn/concepts.hpp>

namespace fmd::flowmap {

/// A two-time network predicting an endpoint D(x, t, r), seen as the flow map ū = (D − x)/(1 − t)
/// on the linear path (theory.md §5.4); itself an nn::TwoTimeNetwork with tangent(), trained by
/// MeanFlow and Shortcut. Every t must be < 1. Holds the network by reference.
template <class Net>
class EndpointFlowMap {
public:
    using Scalar = typename Net::Scalar;  ///< the network's scalar
    using S = Scalar;                     ///< shorthand for Scalar

    /// Wraps `net` (an nn::TwoTimeNetwork, checked at compile time).
    explicit EndpointFlowMap(Net& net) : net_(&net) { static_assert(nn::check_two_time_network<Net>()); }

    /// The wrapped network.
    Net& inner() { return *net_; }
    /// The wrapped network's input dimension.
    Eigen::Index input_dim() const { return net_->input_dim(); }
    /// The wrapped network's parameter count (this wrapper has none of its own).
    Eigen::Index parameter_count() const { return net_->parameter_count(); }
    /// The wrapped network's flat parameter buffer.
    decltype(auto) parameters() { return net_->parameters(); }
    /// The wrapped network's flat gradient buffer.
    decltype(auto) gradients() { return net_->gradients(); }
    /// The wrapped network's null label ∅ (class-conditional networks only).
    int null_label() const
        requires requires(const Net& n) { n.null_label(); }
    {
        return net_->null_label();
    }
    /// `"flowmap::EndpointFlowMap(<inner description>)"`, for checkpoints and logs.
    std::string describe() const {
        if constexpr (requires(const Net& n) { { n.describe() } -> std::convertible_to<std::string>; })
            return "flowmap::EndpointFlowMap(" + net_->describe() + ")";
        else return "flowmap::EndpointFlowMap(network with " + std::to_string(net_->parameter_count()) + " parameters)";
    }

    /// Training pass ū = (D − x)/(1 − t) for x (dim × n) at per-sample times t (and r, default r = t;
    /// 1 × n rows, every t < 1), optionally with labels; caches what tangent() and backward() need.
    ///@{
    void forward(In<S> x, const RowIn<S>& t, Out<S> out) { train(x, t, t, Labels{}, out); }
    void forward(In<S> x, const RowIn<S>& t, Labels labels, Out<S> out) { train(x, t, t, labels, out); }
    void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Out<S> out) { train(x, t, r, Labels{}, out); }
    void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Labels labels, Out<S> out) { train(x, t, r, labels, out); }
    ///@}

    /// d/dε ū along (v, ṫ, ṙ): (dD − v)/(1 − t) + ṫ (D − x)/(1 − t)².
    void tangent(In<S> v, double t_dot, double r_dot, Out<S> out) {
        const Eigen::Index n = n_;
        if (n < 0) detail::fail("flowmap::EndpointFlowMap::tangent", "v", "needs a preceding forward() (training pass)");
        net_->tangent(v, t_dot, r_dot, Out<S>(dd_.leftCols(n)));
        for (Eigen::Index j = 0; j < n; ++j) {
            const S k = S(1) / (S(1) - t_(j));
            out.col(j) = k * (dd_.col(j) - v.col(j)) + S(t_dot) * k * k * (d_.col(j) - x_.col(j));
        }
    }

    /// ∂L/∂D = ∂L/∂ū / (1 − t), handed to the inner network.
    void backward(In<S> grad_out) {
        const Eigen::Index n = n_;
        if (n < 0 || grad_out.cols() != n)
            detail::fail("flowmap::EndpointFlowMap::backward", "grad_out", "must follow a forward() of the same batch (", n, " columns), got ", grad_out.cols());
        for (Eigen::Index j = 0; j < n; ++j) g_.col(j) = grad_out.col(j) / (S(1) - t_(j));
        net_->backward(In<S>(g_.leftCols(n)));
    }

    /// Sampling call ū(x, t, r) at one time pair for the batch (r = t: the velocity), optionally with
    /// labels; out must not alias x.
    ///@{
    void operator()(In<S> x, double t, Out<S> out) { eval(x, t, t, Labels{}, out); }
    void operator()(In<S> x, double t, Labels labels, Out<S> out) { eval(x, t, t, labels, out); }
    void operator()(In<S> x, double t, double r, Out<S> out) { eval(x, t, r, Labels{}, out); }
    void operator()(In<S> x, double t, double r, Labels labels, Out<S> out) { eval(x, t, r, labels, out); }
    ///@}

private:
    static void check_time(std::string_view where, double t) {
        if (!(t < 1.0)) detail::fail(where, "t", "must be < 1 (ū = (D − x)/(1 − t) is singular at t = 1), got ", t);
    }

    void train(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Labels labels, Out<S> out) {
        constexpr std::string_view where = "flowmap::EndpointFlowMap::forward";
        const Eigen::Index n = x.cols();
        for (Eigen::Index j = 0; j < t.cols(); ++j) check_time(where, static_cast<double>(t(j)));
        if (x_.rows() != x.rows() || x_.cols() < n) {
            for (Matrix<S>* m : {&x_, &d_, &dd_, &g_}) m->resize(x.rows(), n);
            t_.resize(n);
        }
        n_ = -1;
        fmd::detail::two_time_forward<S>(where, *net_, x, t, r, labels, Out<S>(d_.leftCols(n)));
        x_.leftCols(n) = x;
        t_.leftCols(n) = t;
        for (Eigen::Index j = 0; j < n; ++j) out.col(j) = (d_.col(j) - x.col(j)) / (S(1) - t(j));
        n_ = n;
    }

    void eval(In<S> x, double t, double r, Labels labels, Out<S> out) {
        constexpr std::string_view where = "flowmap::EndpointFlowMap::operator()";
        check_time(where, t);
        if (labels.empty()) (*net_)(x, t, r, out);
        else if constexpr (requires { (*net_)(x, t, r, labels, out); }) (*net_)(x, t, r, labels, out);
        else detail::fail(where, "labels", "need an inner network with operator()(x, t, r, labels, out)");
        out = (out - x) / S(1.0 - t);
    }

    Net* net_;
    Matrix<S> x_, d_, dd_, g_;
    Row<S> t_;
    Eigen::Index n_ = -1;
};

}  // namespace fmd::flowmap
