// expect: fmd::solver::OdeStepper: missing `template <class F> void step\(F&& field, Out<S> x, double t, double h\)`
// A stepper with a misspelt step(): integrate names the concept and the member.
#include <fmd/fmd.hpp>

struct MyEuler {
    using Scalar = double;
    static constexpr int order = 1;
    static constexpr int nfe_per_step = 1;
    template <class F>
    void advance(F&&, fmd::Out<double>, double, double) {}
};

int main() {
    fmd::Matrix<double> x = fmd::Matrix<double>::Zero(2, 3);
    MyEuler stepper;
    auto u = [](fmd::In<double> y, double, fmd::Out<double> out) { out = -y; };
    fmd::integrate(u, x, fmd::grid::uniform(10), stepper);
}
