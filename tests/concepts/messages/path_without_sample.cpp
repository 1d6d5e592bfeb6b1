// expect: fmd::ProbabilityPath: missing `void sample\(In<S> z, In<S> eps, const RowIn<S>& t, Out<S> xt, Out<S> ut, Rng& rng\) const`
// A path that only gives x_t: the trainer names the call it needs.
#include <fmd/fmd.hpp>

struct MyPath {
    void sample(fmd::In<float>, fmd::In<float>, const fmd::RowIn<float>&, fmd::Out<float>) const {}
};

int main() {
    fmd::nn::MLP<float> net({.dim = 2, .width = 8, .depth = 1});
    fmd::nn::AdamW<float> opt(net.parameter_count());
    fmd::train::Trainer trainer(MyPath{}, fmd::loss::cfm, net, opt);
}
