// expect: fmd::nn::Optimizer: missing `double lr\(\) const`
// An optimizer without lr(): the trainer names the concept and the member.
#include <fmd/fmd.hpp>

struct Sgd {
    void step(Eigen::Ref<fmd::Vector<float>> p, const Eigen::Ref<const fmd::Vector<float>>& g) { p -= 0.1f * g; }
    void set_lr(double) {}
};

int main() {
    fmd::nn::MLP<float> net({.dim = 2, .width = 8, .depth = 1});
    Sgd opt;
    fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt);
}
