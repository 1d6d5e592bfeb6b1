#pragma once
// Fashion-MNIST helpers shared by examples 03 and 06 (not part of the library): finding (and
// installing) Debian's dataset-fashion-mnist and the scoring classifier.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <Eigen/Core>

#include <fmd/data/idx.hpp>
#include <fmd/fmd.hpp>

namespace fashion {

using S = float;
using fmd::Matrix;
using fmd::Vector;

constexpr int classes = 10;
inline const char* const class_names[classes] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};

// ---------------------------------------------------------------------------------------------
// Data: where the Debian package puts the files; installs the package when they are missing.

inline std::string find_file(const std::string& dir, const std::string& stem) {
    for (const std::string& name : {stem + ".gz", stem})
        if (std::filesystem::exists(dir + "/" + name)) return dir + "/" + name;
    return "";
}

inline bool have_data(const std::string& dir) {
    for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
        if (find_file(dir, stem).empty()) return false;
    return true;
}

inline void ensure_data(const std::string& dir, bool is_default, bool install) {
    if (have_data(dir)) return;
    std::fprintf(stderr, "Fashion-MNIST: the IDX files (train-images-idx3-ubyte[.gz], …) are not in %s\n", dir.c_str());
    if (is_default && install) {
        const char* cmd = geteuid() == 0 ? "apt-get install -y -q dataset-fashion-mnist" : "sudo apt-get install -y -q dataset-fashion-mnist";
        std::fprintf(stderr, "installing Debian's dataset-fashion-mnist: %s\n", cmd);
        if (std::system(cmd) == 0 && have_data(dir)) return;
    }
    std::fprintf(stderr,
                 "error: Fashion-MNIST not found. Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in\n"
                 "       /usr/share/datasets/fashion-mnist) or pass --data DIR with the four IDX files.\n");
    std::exit(1);
}

// ---------------------------------------------------------------------------------------------
// The scoring classifier: 784 → 512 → 256 → 10, ReLU, softmax cross-entropy, parameters in one
// buffer viewed as fmd::nn::Linear layers and updated by fmd::nn::AdamW.

class Classifier {
public:
    Classifier(Eigen::Index dim, fmd::Rng& rng) : sizes_{dim, 512, 256, classes} {
        Eigen::Index total = 0;
        for (int l = 0; l < 3; ++l) total += fmd::nn::Linear<S>::size(sizes_[l + 1], sizes_[l]);
        p_.resize(total);
        g_.resize(total);
        Eigen::Index off = 0;
        for (int l = 0; l < 3; ++l) {
            offsets_[l] = off;
            const double bound = 1.0 / std::sqrt(static_cast<double>(sizes_[l]));
            const Eigen::Index n = fmd::nn::Linear<S>::size(sizes_[l + 1], sizes_[l]);
            for (Eigen::Index i = 0; i < n; ++i) p_(off + i) = static_cast<S>(bound * (2 * fmd::uniform01(rng) - 1));
            off += n;
        }
    }
    fmd::nn::Linear<S> layer(int l) { return {p_.data() + offsets_[l], sizes_[l + 1], sizes_[l]}; }
    fmd::nn::Linear<S> grad(int l) { return {g_.data() + offsets_[l], sizes_[l + 1], sizes_[l]}; }

    /// Logits (10 x n) of x (784 x n).
    void forward(fmd::In<S> x) {
        const Eigen::Index n = x.cols();
        a0_.resize(sizes_[1], n);
        a1_.resize(sizes_[2], n);
        logits_.resize(classes, n);
        a0_.noalias() = layer(0).weight * x;
        fmd::nn::relu_forward<S>(layer(0).bias, a0_);
        a1_.noalias() = layer(1).weight * a0_;
        fmd::nn::relu_forward<S>(layer(1).bias, a1_);
        layer(2).forward(a1_, logits_);
    }
    /// One AdamW step of softmax cross-entropy on (x, y); returns the mean loss.
    double train_batch(fmd::In<S> x, const std::vector<int>& y, fmd::nn::AdamW<S>& opt) {
        forward(x);
        const Eigen::Index n = x.cols();
        double loss = 0;
        Matrix<S> d = logits_;  // becomes ∂L/∂logits = (softmax − onehot)/n
        for (Eigen::Index j = 0; j < n; ++j) {
            auto c = d.col(j);
            c.array() -= c.maxCoeff();
            c = c.array().exp();
            const S z = c.sum();
            c /= z;
            loss -= std::log(std::max<double>(c(y[static_cast<std::size_t>(j)]), 1e-30));
            c(y[static_cast<std::size_t>(j)]) -= 1;
        }
        d /= static_cast<S>(n);
        auto g2 = grad(2), g1 = grad(1), g0 = grad(0);
        fmd::nn::Linear<S>::backward(a1_, d, g2);
        Matrix<S> d1(sizes_[2], n), d0(sizes_[1], n);
        layer(2).backward_input(d, d1);
        fmd::nn::relu_backward<S>(a1_, d1);
        fmd::nn::Linear<S>::backward(a0_, d1, g1);
        layer(1).backward_input(d1, d0);
        fmd::nn::relu_backward<S>(a0_, d0);
        fmd::nn::Linear<S>::backward(x, d0, g0);
        opt.step(p_, g_);
        return loss / static_cast<double>(n);
    }
    /// Predicted classes of the columns of x (clamped to the data range [−1, 1]).
    std::vector<int> predict(const Matrix<S>& x) {
        std::vector<int> out;
        for (Eigen::Index j0 = 0; j0 < x.cols(); j0 += 1000) {
            const Eigen::Index m = std::min<Eigen::Index>(1000, x.cols() - j0);
            const Matrix<S> xc = x.middleCols(j0, m).cwiseMax(S(-1)).cwiseMin(S(1));
            forward(xc);
            for (Eigen::Index j = 0; j < m; ++j) {
                Eigen::Index k = 0;
                logits_.col(j).maxCoeff(&k);
                out.push_back(static_cast<int>(k));
            }
        }
        return out;
    }
    /// The last hidden layer's activations (256 x n) of x clamped to [−1, 1]: a feature space for
    /// distances between image sets.
    Matrix<S> features(const Matrix<S>& x) {
        Matrix<S> f(sizes_[2], x.cols());
        for (Eigen::Index j0 = 0; j0 < x.cols(); j0 += 1000) {
            const Eigen::Index m = std::min<Eigen::Index>(1000, x.cols() - j0);
            forward(x.middleCols(j0, m).cwiseMax(S(-1)).cwiseMin(S(1)));
            f.middleCols(j0, m) = a1_;
        }
        return f;
    }
    Eigen::Index parameter_count() const { return p_.size(); }

private:
    Eigen::Index sizes_[4];
    Eigen::Index offsets_[3] = {};
    Vector<S> p_, g_;
    Matrix<S> a0_, a1_, logits_;
};

inline double accuracy(const std::vector<int>& predicted, const std::vector<int>& truth) {
    long hits = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) hits += predicted[i] == truth[i];
    return static_cast<double>(hits) / static_cast<double>(truth.size());
}

/// The class names in label order (for the plotting scripts' row labels).
inline std::vector<std::string> class_name_list() { return {std::begin(class_names), std::end(class_names)}; }

/// The four IDX files of `dir` (installed first when missing at the default place), scaled to [−1, 1].
struct Data {
    fmd::data::LabelledImages<S> train, test;
};
inline Data load(const std::string& dir, bool is_default, bool install) {
    ensure_data(dir, is_default, install);
    return {fmd::data::load_idx<S>(find_file(dir, "train-images-idx3-ubyte"), find_file(dir, "train-labels-idx1-ubyte")),
            fmd::data::load_idx<S>(find_file(dir, "t10k-images-idx3-ubyte"), find_file(dir, "t10k-labels-idx1-ubyte"))};
}

/// Trains the classifier for `epochs` passes over shuffled mini-batches of 128 (AdamW, lr 1e-3).
inline void train_classifier(Classifier& clf, const Matrix<S>& images, const std::vector<int>& labels, long epochs, fmd::Rng& rng) {
    fmd::nn::AdamW<S> opt(clf.parameter_count(), {.lr = 1e-3, .weight_decay = 1e-4});
    const Eigen::Index n = images.cols(), cb = 128;
    std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
    Matrix<S> xb(images.rows(), cb);
    std::vector<int> yb(static_cast<std::size_t>(cb));
    for (long e = 0; e < epochs; ++e) {
        for (Eigen::Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
        for (Eigen::Index i = n - 1; i > 0; --i)  // Fisher–Yates with the library's uniform01
            std::swap(order[static_cast<std::size_t>(i)],
                      order[static_cast<std::size_t>(std::min<Eigen::Index>(i, static_cast<Eigen::Index>(fmd::uniform01(rng) * static_cast<double>(i + 1))))]);
        for (Eigen::Index b = 0; b + cb <= n; b += cb) {
            for (Eigen::Index j = 0; j < cb; ++j) {
                const Eigen::Index k = order[static_cast<std::size_t>(b + j)];
                xb.col(j) = images.col(k);
                yb[static_cast<std::size_t>(j)] = labels[static_cast<std::size_t>(k)];
            }
            clf.train_batch(xb, yb, opt);
        }
    }
}

}  // namespace fashion
