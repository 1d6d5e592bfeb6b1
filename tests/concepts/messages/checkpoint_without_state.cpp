// expect: fmd::nn::StatefulOptimizer \(needed to checkpoint or restore\): missing `const OptimizerState<S>& state\(\) const`
// Training works with a stateless optimizer; asking for a checkpoint names what is missing.
#include <fmd/fmd.hpp>

struct Sgd {
    double rate = 0.1;
    void step(Eigen::Ref<fmd::Vector<float>> p, const Eigen::Ref<const fmd::Vector<float>>& g) { p -= float(rate) * g; }
    void set_lr(double lr) { rate = lr; }
    double lr() const { return rate; }
};

int main() {
    fmd::nn::MLP<float> net({.dim = 2, .width = 8, .depth = 1});
    Sgd opt;
    fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt);
    fmd::Rng rng(0);
    (void)trainer.checkpoint(rng);
}
