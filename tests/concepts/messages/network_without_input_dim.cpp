// expect: fmd::nn::Network: missing `Index input_dim\(\) const`
// A network written without input_dim(): the trainer's first error names the concept and the member.
#include <fmd/fmd.hpp>

struct Net {
    using Scalar = float;
    fmd::Vector<float> p{fmd::Vector<float>::Zero(4)}, g{fmd::Vector<float>::Zero(4)};
    Eigen::Index parameter_count() const { return 4; }
    Eigen::Map<fmd::Vector<float>> parameters() { return {p.data(), 4}; }
    Eigen::Map<fmd::Vector<float>> gradients() { return {g.data(), 4}; }
    void forward(fmd::In<float>, const fmd::RowIn<float>&, fmd::Out<float>) {}
    void backward(fmd::In<float>) {}
    void operator()(fmd::In<float>, double, fmd::Out<float>) {}
};

int main() {
    Net net;
    fmd::nn::AdamW<float> opt(4);
    fmd::train::Trainer trainer(fmd::GaussianPath<fmd::schedule::Linear>{}, fmd::loss::cfm, net, opt);
}
