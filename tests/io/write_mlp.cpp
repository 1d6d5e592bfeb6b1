// fmd's side of the PyTorch round trip (scripts/torch/safetensors_roundtrip.py check): an fmd MLP
// shaped like the notebook model, saved with fmd::io::save_mlp, and a second file with a fixed
// batch and fmd's forward on it, for PyTorch to reproduce from the saved weights.
//   fmd_safetensors_write_mlp WEIGHTS.safetensors IO.safetensors
#include <cstdio>
#include <exception>
#include <vector>

#include <fmd/io/safetensors.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s WEIGHTS.safetensors IO.safetensors\n", argv[0]);
        return 2;
    }
    try {
        const fmd::nn::MLPConfig config{.dim = 2, .width = 24, .depth = 3};
        fmd::nn::MLP<float> net(config, 11);  // trained or not, any weights do: PyTorch must reproduce them
        fmd::io::save_mlp(argv[1], net);

        // Reloaded into double: the forward PyTorch runs in float64 on the same (F32) weights.
        fmd::nn::MLP<double> twin(config, 0);
        fmd::io::load_mlp(argv[1], twin);
        const Eigen::Index n = 6;
        fmd::Matrix<double> x(2, n), out(2, n);
        x << 0.5, -1.0, 2.0, 0.0, -0.75, 1.25,  //
            -1.5, 0.25, 1.0, 0.0, 3.0, -2.0;
        fmd::Row<double> t(n);
        t << 0.0, 0.05, 0.3, 0.5, 0.77, 1.0;
        twin.forward(x, t, out);

        // fmd's dim x n column-major batch is PyTorch's n x dim row-major one.
        fmd::io::SafeTensors io;
        io.insert("x", fmd::io::Tensor::from_values<double>(fmd::io::DType::f64, {n, 2}, std::span<const double>(x.data(), 2 * n)));
        io.insert("t", fmd::io::Tensor::from_values<double>(fmd::io::DType::f64, {n}, std::span<const double>(t.data(), n)));
        io.insert("fmd_out", fmd::io::Tensor::from_values<double>(fmd::io::DType::f64, {n, 2}, std::span<const double>(out.data(), 2 * n)));
        fmd::io::write_safetensors(argv[2], io);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
