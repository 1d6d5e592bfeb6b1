// Concept tests, positive and negative (in the style of mp-units): for every concept a minimal
// model satisfies it, and the same model with any one required member removed does not. Each
// model is a template over the index of the member it drops (0 = none), so every required member
// is checked by one static_assert. docs/concepts.md lists the same members.
#include <cstdint>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

namespace {

using fmd::In;
using fmd::Matrix;
using fmd::Out;
using fmd::Row;
using fmd::RowIn;
using fmd::Vector;
using S = double;

template <int Drop>
struct ScalarBase {
    using Scalar = double;
};
template <>
struct ScalarBase<1> {};

// --- Schedule: alpha, beta, d_alpha, d_beta.
template <int D>
struct Sched {
    double alpha(double t) const requires(D != 1) { return t; }
    double beta(double t) const requires(D != 2) { return 1 - t; }
    double d_alpha(double) const requires(D != 3) { return 1; }
    double d_beta(double) const requires(D != 4) { return -1; }
};
static_assert(fmd::schedule::Schedule<Sched<0>>);
static_assert(!fmd::schedule::Schedule<Sched<1>> && !fmd::schedule::Schedule<Sched<2>> && !fmd::schedule::Schedule<Sched<3>> &&
              !fmd::schedule::Schedule<Sched<4>>);

// --- VectorField / ConditionalField / JvpField / SigmaPolicy.
struct Field {
    void operator()(In<S>, double, Out<S>) {}
};
struct NotAField {
    void operator()(In<S>, Out<S>) {}  // no time
};
struct CondField {
    void operator()(In<S>, double, fmd::Labels, Out<S>) {}
};
struct JField {
    void operator()(In<S>, double, Out<S>) {}
    void jvp(In<S>, double, In<S>, Out<S>) {}
};
static_assert(fmd::VectorField<Field, S> && !fmd::VectorField<NotAField, S>);
static_assert(fmd::ConditionalField<CondField, S> && !fmd::ConditionalField<Field, S>);
static_assert(fmd::JvpField<JField, S> && !fmd::JvpField<Field, S>);
static_assert(fmd::SigmaPolicy<fmd::ConstantSigma> && !fmd::SigmaPolicy<Field>);

// --- ProbabilityPath: sample(z, eps, t, xt, ut, rng); GaussianProbabilityPath adds coefficients(t).
template <int D>
struct Path {
    void sample(In<S>, In<S>, const RowIn<S>&, Out<S>, Out<S>, fmd::Rng&) const requires(D != 1) {}
    fmd::PathCoefficients coefficients(double) const requires(D != 2) { return {}; }
};
static_assert(fmd::ProbabilityPath<Path<0>, S> && fmd::GaussianProbabilityPath<Path<0>, S>);
static_assert(!fmd::ProbabilityPath<Path<1>, S> && !fmd::GaussianProbabilityPath<Path<1>, S>);
static_assert(fmd::ProbabilityPath<Path<2>, S> && !fmd::GaussianProbabilityPath<Path<2>, S>);

// --- Network: Scalar, input_dim, parameter_count, parameters, gradients, forward, backward, operator().
template <int D>
struct Net : ScalarBase<D> {
    Vector<S> p, g;
    Eigen::Index input_dim() const requires(D != 2) { return 2; }
    Eigen::Index parameter_count() const requires(D != 3) { return 1; }
    Eigen::Map<Vector<S>> parameters() requires(D != 4) { return {p.data(), p.size()}; }
    Eigen::Map<Vector<S>> gradients() requires(D != 5) { return {g.data(), g.size()}; }
    void forward(In<S>, const RowIn<S>&, Out<S>) requires(D != 6) {}
    void backward(In<S>) requires(D != 7) {}
    void operator()(In<S>, double, Out<S>) requires(D != 8) {}
    // ConditionalNetwork: labelled forward, labelled call, null_label.
    void forward(In<S>, const RowIn<S>&, fmd::Labels, Out<S>) requires(D != 9) {}
    void operator()(In<S>, double, fmd::Labels, Out<S>) requires(D != 10) {}
    int null_label() const requires(D != 11) { return 3; }
};
static_assert(fmd::nn::Network<Net<0>, S> && fmd::nn::ConditionalNetwork<Net<0>, S>);
static_assert(!fmd::nn::Network<Net<0>, float>);  // Scalar must be the S asked for
static_assert(!fmd::nn::Network<Net<1>, S> && !fmd::nn::Network<Net<2>, S> && !fmd::nn::Network<Net<3>, S> && !fmd::nn::Network<Net<4>, S> &&
              !fmd::nn::Network<Net<5>, S> && !fmd::nn::Network<Net<6>, S> && !fmd::nn::Network<Net<7>, S> && !fmd::nn::Network<Net<8>, S>);
static_assert(fmd::nn::Network<Net<9>, S> && !fmd::nn::ConditionalNetwork<Net<9>, S>);
static_assert(fmd::nn::Network<Net<10>, S> && !fmd::nn::ConditionalNetwork<Net<10>, S>);
static_assert(fmd::nn::Network<Net<11>, S> && !fmd::nn::ConditionalNetwork<Net<11>, S>);

// --- Optimizer: step, set_lr, lr; StatefulOptimizer adds state, set_state.
template <int D>
struct Opt {
    fmd::nn::OptimizerState<S> st;
    void step(Eigen::Ref<Vector<S>>, const Eigen::Ref<const Vector<S>>&) requires(D != 1) {}
    void set_lr(double) requires(D != 2) {}
    double lr() const requires(D != 3) { return 0; }
    const fmd::nn::OptimizerState<S>& state() const requires(D != 4) { return st; }
    void set_state(const fmd::nn::OptimizerState<S>&) requires(D != 5) {}
};
static_assert(fmd::nn::StatefulOptimizer<Opt<0>, S>);
static_assert(!fmd::nn::Optimizer<Opt<1>, S> && !fmd::nn::Optimizer<Opt<2>, S> && !fmd::nn::Optimizer<Opt<3>, S>);
static_assert(fmd::nn::Optimizer<Opt<4>, S> && !fmd::nn::StatefulOptimizer<Opt<4>, S>);
static_assert(fmd::nn::Optimizer<Opt<5>, S> && !fmd::nn::StatefulOptimizer<Opt<5>, S>);

// --- LrSchedule, TimeSampler, DataSource, LabelledDataSource, GradientPolicy, AveragePolicy.
struct Lr {
    double lr(std::int64_t) const { return 1; }
};
struct TimeS {
    void operator()(Row<S>&, fmd::Rng&) const {}
};
struct Data {
    void sample(Matrix<S>&, fmd::Rng&) const {}
};
struct LData {
    void sample(Matrix<S>&, std::span<int>, fmd::Rng&) const {}
};
struct Grad {
    double operator()(Eigen::Ref<Vector<S>>) { return 0; }
};
struct Avg {
    void operator()(Eigen::Ref<Vector<S>>, const Eigen::Ref<const Vector<S>>&, std::int64_t) {}
};
struct Nothing {};
static_assert(fmd::nn::LrSchedule<Lr> && !fmd::nn::LrSchedule<Nothing> && !fmd::nn::LrSchedule<TimeS>);
static_assert(fmd::time_sampler::TimeSampler<TimeS, S> && !fmd::time_sampler::TimeSampler<Nothing, S> && !fmd::time_sampler::TimeSampler<Lr, S>);
static_assert(fmd::train::DataSource<Data, S> && !fmd::train::DataSource<LData, S> && !fmd::train::DataSource<Nothing, S>);
static_assert(fmd::train::LabelledDataSource<LData, S> && !fmd::train::LabelledDataSource<Data, S>);
static_assert(fmd::train::GradientPolicy<Grad, S> && !fmd::train::GradientPolicy<Avg, S> && !fmd::train::GradientPolicy<Nothing, S>);
static_assert(fmd::train::AveragePolicy<Avg, S> && !fmd::train::AveragePolicy<Grad, S> && !fmd::train::AveragePolicy<Nothing, S>);

// --- Loss: prediction, coefficients; Weighting; Distance.
template <int D>
struct LossT {
    static constexpr fmd::Prediction prediction = fmd::Prediction::velocity;
    static fmd::loss::TargetCoefficients coefficients(const fmd::PathCoefficients&) requires(D != 2) { return {1, -1}; }
};
struct NoPrediction {
    static fmd::loss::TargetCoefficients coefficients(const fmd::PathCoefficients&) { return {1, -1}; }
};
struct Weight {
    template <class P>
    double operator()(const P&, double) const { return 1; }
};
struct Dist {
    template <class R>
    double value(const R&) const { return 0; }
    template <class R>
    double value_and_gradient(R&&) const { return 0; }
};
struct ValueOnly {
    template <class R>
    double value(const R&) const { return 0; }
};
using GPath = fmd::GaussianPath<fmd::schedule::Linear>;
static_assert(fmd::loss::Loss<LossT<0>> && !fmd::loss::Loss<LossT<2>> && !fmd::loss::Loss<NoPrediction>);
static_assert(fmd::loss::Weighting<Weight, GPath> && !fmd::loss::Weighting<Nothing, GPath>);
static_assert(fmd::loss::Distance<Dist, S> && !fmd::loss::Distance<ValueOnly, S> && fmd::loss::Distance<fmd::loss::PseudoHuber, S>);

// --- OdeStepper: Scalar, order, nfe_per_step, step(f, x, t, h).
template <int D>
struct Ode : ScalarBase<D> {
    static constexpr int order = 1;
    static constexpr int nfe_per_step = 1;
    template <class F>
    void step(F&&, Out<S>, double, double) requires(D != 4) {}
};
template <int D>
struct OdeNoOrder : ScalarBase<0> {
    static constexpr int nfe_per_step = 1;
    template <class F>
    void step(F&&, Out<S>, double, double) {}
};
struct OdeNoNfe : ScalarBase<0> {
    static constexpr int order = 1;
    template <class F>
    void step(F&&, Out<S>, double, double) {}
};
static_assert(fmd::solver::OdeStepper<Ode<0>>);
static_assert(!fmd::solver::OdeStepper<Ode<1>> && !fmd::solver::OdeStepper<OdeNoOrder<0>> && !fmd::solver::OdeStepper<OdeNoNfe> &&
              !fmd::solver::OdeStepper<Ode<4>>);

// --- SdeStepper: Scalar, nfe_per_step, sigma(t), step(f, x, t, h, rng).
template <int D>
struct Sde : ScalarBase<D> {
    static constexpr int nfe_per_step = 1;
    double sigma(double) const requires(D != 3) { return 1; }
    template <class F, class G>
    void step(F&&, Out<S>, double, double, G&) requires(D != 4) {}
};
static_assert(fmd::solver::SdeStepper<Sde<0>>);
static_assert(!fmd::solver::SdeStepper<Sde<1>> && !fmd::solver::SdeStepper<Sde<3>> && !fmd::solver::SdeStepper<Sde<4>>);
static_assert(!fmd::solver::SdeStepper<Ode<0>> && !fmd::solver::OdeStepper<Sde<0>>);

// --- AdaptiveStepper: Scalar, order, integrate(f, x, times, observer) -> SolveStats.
template <int D>
struct Adaptive : ScalarBase<D> {
    static constexpr int order = 5;
    template <class F, class Obs>
    fmd::SolveStats integrate(F&&, Matrix<S>&, const std::vector<double>&, Obs&&) requires(D != 3) { return {}; }
};
struct AdaptiveWrongReturn : ScalarBase<0> {
    static constexpr int order = 5;
    template <class F, class Obs>
    long integrate(F&&, Matrix<S>&, const std::vector<double>&, Obs&&) { return 0; }
};
static_assert(fmd::solver::AdaptiveStepper<Adaptive<0>> && fmd::solver::AdaptiveStepper<fmd::solver::Dopri5<S>>);
static_assert(!fmd::solver::AdaptiveStepper<Adaptive<1>> && !fmd::solver::AdaptiveStepper<Adaptive<3>> &&
              !fmd::solver::AdaptiveStepper<AdaptiveWrongReturn>);
static_assert(!fmd::solver::OdeStepper<fmd::solver::Dopri5<S>> && fmd::solver::OdeStepper<fmd::solver::Heun<S>>);

// --- The library's own types model their concepts.
static_assert(fmd::nn::Network<fmd::nn::MLP<float>, float> && fmd::nn::ConditionalNetwork<fmd::nn::MLP<double>, double>);
static_assert(fmd::nn::StatefulOptimizer<fmd::nn::AdamW<float>, float> && fmd::nn::StatefulOptimizer<fmd::nn::SGD<double>, double>);
static_assert(fmd::GaussianProbabilityPath<GPath, float>);
static_assert(fmd::ProbabilityPath<fmd::StochasticInterpolant<fmd::schedule::Linear>, float> &&
              !fmd::GaussianProbabilityPath<fmd::StochasticInterpolant<fmd::schedule::Linear>, float>);
static_assert(fmd::solver::SdeStepper<fmd::solver::EulerMaruyama<float>> && fmd::solver::OdeStepper<fmd::solver::AdamsBashforth<3, float>>);

}  // namespace

TEST_CASE("Concept tests are compile-time: this file compiling is the test", "[concepts]") {
    // The static_asserts above run when this file compiles; one runtime check keeps the file in the
    // suite's listing.
    CHECK(fmd::solver::forward_only<fmd::solver::DpmSolver2M<GPath, S>>());
    CHECK_FALSE(fmd::solver::forward_only<fmd::solver::Heun<S>>());
}
