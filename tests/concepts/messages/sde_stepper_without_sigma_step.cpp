// expect: fmd::solver::SdeStepper: missing `template <class F, class G> void step\(F&& drift, Out<S> x, double t, double h, G& rng\)`
// An SDE stepper whose step() forgot the generator: sample names the SDE concept's member.
#include <fmd/fmd.hpp>

struct MyEm {
    using Scalar = double;
    static constexpr int nfe_per_step = 1;
    double sigma(double) const { return 0.5; }
    template <class F>
    void step(F&&, fmd::Out<double>, double, double) {}
};

int main() {
    fmd::Matrix<double> x = fmd::Matrix<double>::Zero(2, 3);
    MyEm stepper;
    fmd::Rng rng(0);
    auto u = [](fmd::In<double> y, double, fmd::Out<double> out) { out = -y; };
    fmd::sample(u, x, fmd::grid::uniform(10), stepper, rng);
}
