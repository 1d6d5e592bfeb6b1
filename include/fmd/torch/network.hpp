#pragma once
// A LibTorch module as an fmd network: a field for every sampler and a trainable model for
// train::Trainer (optional: target fmd::torch, built only where LibTorch is found; the core
// stays Eigen-only).
//
// The module's forward takes a batch as PyTorch lays it out, one row per sample:
//     forward(x [n, dim], t [n]) -> [n, dim]                      (unconditional)
//     forward(x [n, dim], t [n], labels [n] int64) -> [n, dim]    (class-conditional; ∅ = num_classes;
//                                                                  a module with only this one gets ∅
//                                                                  in the unlabelled calls)
// in the module's dtype (float32 for S = float, float64 for S = double), on the CPU.
//
// Memory: an fmd batch (dim x n, column-major) is byte for byte a row-major [n, dim] tensor, so
// x, t and ∂L/∂pred enter the module without copies (a strided block is staged first). The
// module allocates its own output, which is copied once into `out`. The module's parameters are
// moved into one flat buffer and each parameter (and its .grad) becomes a view of it: fmd's
// optimizers, gradient policies, averages and checkpoints work on parameters() / gradients()
// and LibTorch sees every change; a torch::optim optimizer (TorchOptimizer) updates the same
// memory. Autograd accumulates into the views in place.
//
// Threads: Debian's LibTorch runs its intra-op parallelism on OpenMP, the same libgomp pool as
// Eigen's products, so OMP_NUM_THREADS (or at::set_num_threads) sizes both; fmd's Eigen work and
// the module's forward/backward alternate and never compete for the cores.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <torch/torch.h>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

/// LibTorch interoperability: a torch::nn::Module as an fmd network (libtorch::Network) and a
/// torch::optim optimizer as an fmd optimizer (libtorch::Optimizer).
namespace fmd::libtorch {

/// The LibTorch dtype of fmd's scalar S (float → kFloat32, double → kFloat64).
template <class S>
constexpr torch::Dtype dtype_of() {
    static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>, "fmd::libtorch: Scalar must be float or double");
    if constexpr (std::is_same_v<S, float>) return torch::kFloat32;
    else return torch::kFloat64;
}

/// A module holder (TORCH_MODULE(Name) → Name) or a std::shared_ptr to a module implementation.
template <class M>
concept ModuleHandle = requires(M& m) {
    { m->parameters() } -> std::convertible_to<std::vector<torch::Tensor>>;
    m->train(true);
};

/// A module whose forward takes (x, t).
template <class M>
concept TimeModule = ModuleHandle<M> && requires(M& m, torch::Tensor a) {
    { m->forward(a, a) } -> std::convertible_to<torch::Tensor>;
};

/// A module whose forward also takes int64 labels (x, t, labels).
template <class M>
concept LabelledModule = ModuleHandle<M> && requires(M& m, torch::Tensor a) {
    { m->forward(a, a, a) } -> std::convertible_to<torch::Tensor>;
};

namespace detail {

template <class M>
std::shared_ptr<torch::nn::Module> module_ptr(M& m) {
    if constexpr (requires { m.ptr(); }) return m.ptr();
    else return m;
}

// A row-major [n, dim] tensor over a dim x n column-major batch; `stage` receives a copy when the
// block is strided.
template <class S>
torch::Tensor batch_tensor(In<S> x, Matrix<S>& stage) {
    const S* data = x.data();
    if (x.outerStride() != x.rows() && x.cols() > 1) {
        stage = x;
        data = stage.data();
    }
    return torch::from_blob(const_cast<S*>(data), {static_cast<std::int64_t>(x.cols()), static_cast<std::int64_t>(x.rows())},
                            torch::TensorOptions().dtype(dtype_of<S>()));
}

}  // namespace detail

/// A LibTorch module as an fmd network: models nn::Network (and nn::ConditionalNetwork when the
/// module takes labels), hence VectorField / ConditionalField for samplers and fmd::Guided.
template <class S, ModuleHandle M>
class Network {
    static_assert(TimeModule<M> || LabelledModule<M>,
                  "fmd::libtorch::Network: the module needs `torch::Tensor forward(torch::Tensor x, torch::Tensor t)` (x [n, dim], t [n]) "
                  "or, class-conditional, `forward(x, t, labels)` (labels [n] int64)");
    static constexpr bool labelled = LabelledModule<M>;

public:
    using Scalar = S;  ///< float (module in float32) or double (float64)

    /// Takes the module (shared, as LibTorch modules are) and moves its parameters into one flat
    /// buffer. `input_dim` is dim, the rows of a batch; `num_classes` the labels 0 … C − 1 a
    /// labelled module takes (its null label ∅ = C). Throws fmd::invalid_argument for a module
    /// without parameters, parameters of another dtype or device, or parameters shared between
    /// submodules (they cannot each become a view of the flat buffer).
    Network(M module, Eigen::Index input_dim, int num_classes = 0) : module_(std::move(module)), input_dim_(input_dim), num_classes_(num_classes) {
        constexpr const char* where = "libtorch::Network";
        fmd::detail::require_positive_count(where, "input_dim", input_dim);
        if (num_classes < 0) fmd::detail::fail(where, "num_classes", "must be >= 0, got ", num_classes);
        if (num_classes > 0 && !labelled)
            fmd::detail::fail(where, "num_classes", "is ", num_classes, " but the module has no forward(x, t, labels)");
        if (num_classes == 0 && !TimeModule<M>)
            fmd::detail::fail(where, "num_classes", "must be > 0 for a module whose forward takes labels only (its null label is num_classes)");
        const auto named = detail::module_ptr(module_)->named_parameters(/*recurse=*/true);
        std::int64_t total = 0;
        std::vector<const void*> seen;
        for (const auto& item : named) {
            const torch::Tensor& p = item.value();
            if (p.scalar_type() != dtype_of<S>())
                fmd::detail::fail(where, "module", "parameter '", item.key(), "' has dtype ", p.scalar_type(), ", expected ", torch::ScalarType(dtype_of<S>()),
                                  " (call module->to(", std::is_same_v<S, float> ? "torch::kFloat32" : "torch::kFloat64", ") first)");
            if (!p.device().is_cpu()) fmd::detail::fail(where, "module", "parameter '", item.key(), "' is not on the CPU");
            for (const void* q : seen)
                if (q == p.unsafeGetTensorImpl()) fmd::detail::fail(where, "module", "parameter '", item.key(), "' is shared with another submodule");
            seen.push_back(p.unsafeGetTensorImpl());
            total += p.numel();
        }
        if (total == 0) fmd::detail::fail(where, "module", "has no parameters");
        const auto options = torch::TensorOptions().dtype(dtype_of<S>());
        flat_ = torch::empty({total}, options);
        flat_grad_ = torch::zeros({total}, options);
        torch::NoGradGuard no_grad;
        std::int64_t offset = 0;
        for (const auto& item : named) {
            torch::Tensor p = item.value();
            const std::int64_t n = p.numel();
            torch::Tensor view = flat_.narrow(0, offset, n).view(p.sizes());
            view.copy_(p);
            p.set_data(view);
            params_.push_back(p);
            offsets_.push_back(offset);
            grad_views_.push_back(alias(flat_grad_, offset, p.sizes()));
            offset += n;
        }
        link_gradients();
    }

    /// dim, the rows of a batch.
    Eigen::Index input_dim() const { return input_dim_; }
    /// Number of scalar parameters (the length of the flat buffer).
    Eigen::Index parameter_count() const { return static_cast<Eigen::Index>(flat_.numel()); }
    /// The flat parameter buffer; each module parameter is a view of it.
    Eigen::Map<Vector<S>> parameters() { return {flat_.data_ptr<S>(), parameter_count()}; }
    /// The flat gradient buffer; each parameter's .grad is a view of it.
    Eigen::Map<Vector<S>> gradients() { return {flat_grad_.data_ptr<S>(), parameter_count()}; }
    /// The wrapped module (its parameters live in parameters()).
    M& module() { return module_; }
    /// C, the labels 0 … C − 1 (0: unconditional).
    int num_classes() const { return num_classes_; }
    /// The null label ∅ = num_classes (the unconditional branch of a labelled module).
    int null_label() const requires labelled { return num_classes_; }

    /// Stored in fmd checkpoints and compared on restore.
    std::string describe() const {
        return "libtorch module (" + std::to_string(params_.size()) + " tensors, " + std::to_string(flat_.numel()) + " parameters, input_dim=" +
               std::to_string(input_dim_) + ", num_classes=" + std::to_string(num_classes_) + ")";
    }

    /// Training pass at per-sample times (module in train mode); keeps the graph for backward.
    /// x must stay unchanged until backward (it enters the graph without a copy).
    void forward(In<S> x, const RowIn<S>& t, Out<S> out) {
        check_batch("libtorch::Network::forward", x, t.cols(), out);
        train_mode(true);
        pred_ = call(detail::batch_tensor<S>(x, x_stage_), time_tensor(t));
        copy_out("libtorch::Network::forward", pred_, out);
    }

    /// Labelled training pass: one label per column, ∅ = null_label() allowed.
    void forward(In<S> x, const RowIn<S>& t, Labels labels, Out<S> out) requires labelled {
        check_batch("libtorch::Network::forward", x, t.cols(), out);
        train_mode(true);
        pred_ = module_->forward(detail::batch_tensor<S>(x, x_stage_), time_tensor(t), label_tensor("libtorch::Network::forward", labels, x.cols()));
        copy_out("libtorch::Network::forward", pred_, out);
    }

    /// Overwrites gradients() with ∂L/∂θ for ∂L/∂pred = grad_out (dim x n) of the last forward.
    void backward(In<S> grad_out) {
        constexpr const char* where = "libtorch::Network::backward";
        if (!pred_.defined()) fmd::detail::fail(where, "grad_out", "has no training forward to differentiate (call forward first)");
        if (grad_out.cols() != pred_.size(0) || grad_out.rows() != pred_.size(1))
            fmd::detail::fail(where, "grad_out", "must be ", pred_.size(1), " x ", pred_.size(0), " like the last forward's output, got ", grad_out.rows(),
                              " x ", grad_out.cols());
        link_gradients();
        flat_grad_.zero_();
        pred_.backward(detail::batch_tensor<S>(grad_out, g_stage_));
        pred_ = torch::Tensor();
    }

    /// Sampling call at one time (module in eval mode, no graph).
    void operator()(In<S> x, double t, Out<S> out) {
        check_batch("libtorch::Network::operator()", x, x.cols(), out);
        c10::InferenceMode guard;
        train_mode(false);
        copy_out("libtorch::Network::operator()", call(detail::batch_tensor<S>(x, x_stage_), torch::full({x.cols()}, t, torch::TensorOptions().dtype(dtype_of<S>()))), out);
    }

    /// Labelled sampling call (a ConditionalField, e.g. inside fmd::Guided).
    void operator()(In<S> x, double t, Labels labels, Out<S> out) requires labelled {
        check_batch("libtorch::Network::operator()", x, x.cols(), out);
        c10::InferenceMode guard;
        train_mode(false);
        copy_out("libtorch::Network::operator()",
                 module_->forward(detail::batch_tensor<S>(x, x_stage_), torch::full({x.cols()}, t, torch::TensorOptions().dtype(dtype_of<S>())),
                                  label_tensor("libtorch::Network::operator()", labels, x.cols())),
                 out);
    }

    /// Writes the module (parameters and buffers) with torch::save's archive format.
    void save(const std::string& path) {
        torch::serialize::OutputArchive archive;
        detail::module_ptr(module_)->save(archive);
        archive.save_to(path);
    }

    /// Reads a module written by save() (or by torch::save of the same architecture): parameters
    /// into the flat buffer, buffers into the module. Throws fmd::io_error when the file cannot
    /// be read or does not match the module; the parameters are then unchanged.
    void load(const std::string& path) {
        const torch::Tensor backup = flat_.clone();
        std::string problem;
        try {
            torch::serialize::InputArchive archive;
            archive.load_from(path);
            detail::module_ptr(module_)->load(archive);
        } catch (const c10::Error& e) {
            problem = e.what_without_backtrace();
        }
        // LibTorch's reader gives each parameter new storage: copy it into the flat buffer and
        // make the parameter a view of it again.
        torch::NoGradGuard no_grad;
        for (std::size_t i = 0; i < params_.size(); ++i) {
            torch::Tensor view = flat_.narrow(0, offsets_[i], grad_views_[i].numel()).view(grad_views_[i].sizes());
            if (problem.empty() && params_[i].sizes() != view.sizes())
                problem = "parameter " + std::to_string(i) + " has shape " + c10::str(params_[i].sizes()) + " in the file, " + c10::str(view.sizes()) + " in the module";
            else if (problem.empty() && params_[i].data_ptr() != view.data_ptr())
                view.copy_(params_[i]);
            params_[i].set_data(view);
        }
        if (!problem.empty()) {
            flat_.copy_(backup);
            throw io_error("fmd::libtorch::Network::load: argument 'path' (" + path + ") does not hold this module: " + problem);
        }
    }

private:
    // The unlabelled call; a module that takes labels only gets ∅ for every column.
    torch::Tensor call(const torch::Tensor& x, const torch::Tensor& t) {
        if constexpr (TimeModule<M>) return module_->forward(x, t);
        else return module_->forward(x, t, torch::full({x.size(0)}, static_cast<std::int64_t>(num_classes_), torch::TensorOptions().dtype(torch::kInt64)));
    }

    // `where` is the full name of the calling member; a literal, so no string is built per call.
    void check_batch(const char* where, In<S> x, Eigen::Index cols, Out<S> out) const {
        if (x.rows() != input_dim_) fmd::detail::fail(where, "x", "must have ", input_dim_, " rows (input_dim), got ", x.rows());
        if (x.cols() == 0) fmd::detail::fail(where, "x", "must hold at least one column");
        if (cols != x.cols()) fmd::detail::fail(where, "t", "must hold one time per column of x (", x.cols(), "), got ", cols);
        if (out.rows() != x.rows() || out.cols() != x.cols())
            fmd::detail::fail(where, "out", "must be ", x.rows(), " x ", x.cols(), " like x, got ", out.rows(), " x ", out.cols());
    }

    torch::Tensor time_tensor(const RowIn<S>& t) {
        if (t.innerStride() != 1) {
            t_stage_ = t;
            return torch::from_blob(t_stage_.data(), {t.cols()}, torch::TensorOptions().dtype(dtype_of<S>()));
        }
        return torch::from_blob(const_cast<S*>(t.data()), {t.cols()}, torch::TensorOptions().dtype(dtype_of<S>()));
    }

    torch::Tensor label_tensor(const char* where, Labels labels, Eigen::Index n) const {
        if (static_cast<Eigen::Index>(labels.size()) != n) fmd::detail::fail(where, "labels", "must hold one label per column (", n, "), got ", labels.size());
        for (std::size_t j = 0; j < labels.size(); ++j)
            if (labels[j] < 0 || labels[j] > num_classes_)
                fmd::detail::fail(where, "labels", "entry ", j, " is ", labels[j], ", outside 0 … ", num_classes_, " (∅ = ", num_classes_, ")");
        return torch::from_blob(const_cast<int*>(labels.data()), {static_cast<std::int64_t>(labels.size())}, torch::TensorOptions().dtype(torch::kInt32))
            .to(torch::kInt64);
    }

    void copy_out(const char* where, const torch::Tensor& y, Out<S> out) const {
        if (y.dim() != 2 || y.size(0) != out.cols() || y.size(1) != out.rows() || y.scalar_type() != dtype_of<S>())
            throw invalid_argument(std::string("fmd::") + where + ": argument 'module' returned a tensor of shape " +
                                   c10::str(y.sizes()) + " and dtype " + c10::toString(y.scalar_type()) + "; expected [" + std::to_string(out.cols()) +
                                   ", " + std::to_string(out.rows()) + "] of " + c10::toString(dtype_of<S>()));
        const torch::Tensor c = y.contiguous();
        const Eigen::Map<const Matrix<S>> src(c.data_ptr<S>(), out.rows(), out.cols());
        out = src;
        if (!out.allFinite())
            throw numerical_error(std::string("fmd::") + where + ": argument 'module' returned non-finite values");
    }

    void train_mode(bool on) {
        if (module_->is_training() != on) module_->train(on);
    }

    // A tensor sharing `flat`'s storage at `offset` without being an autograd view (torch's
    // zero_grad detaches gradients in place, which views refuse).
    static torch::Tensor alias(const torch::Tensor& flat, std::int64_t offset, torch::IntArrayRef sizes) {
        const torch::Tensor view = flat.narrow(0, offset, c10::multiply_integers(sizes)).view(sizes);
        return torch::empty({0}, flat.options()).set_(view.storage(), view.storage_offset(), view.sizes(), view.strides());
    }

    // A torch optimizer's zero_grad(set_to_none) or user code may drop the .grad aliases; put them back.
    void link_gradients() {
        for (std::size_t i = 0; i < params_.size(); ++i)
            if (!params_[i].grad().defined() || params_[i].grad().data_ptr() != grad_views_[i].data_ptr()) params_[i].mutable_grad() = grad_views_[i];
    }

    M module_;
    Eigen::Index input_dim_;
    int num_classes_;
    torch::Tensor flat_, flat_grad_, pred_;
    std::vector<torch::Tensor> params_, grad_views_;
    std::vector<std::int64_t> offsets_;
    Matrix<S> x_stage_, g_stage_;
    Row<S> t_stage_;
};

/// A torch::optim optimizer as an fmd optimizer (nn::Optimizer) for a Network's parameters: the
/// trainer's gradient policies act on the gradients first, then torch's step() updates the
/// flat buffer in place. Construct the torch optimizer from net.module()->parameters() after
/// wrapping the module in the Network.
template <class S, class TorchOptimizer>
class Optimizer {
public:
    /// `optimizer` must have been built from `net`'s module parameters (after wrapping); it is
    /// not owned and must outlive this object.
    template <class M>
    Optimizer(TorchOptimizer& optimizer, Network<S, M>& net) : opt_(&optimizer), params_(net.parameters().data()) {}

    /// `params` must be the Network's parameters(); torch's step reads the .grad views.
    void step(Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>&) {
        if (params.data() != params_)
            fmd::detail::fail("libtorch::Optimizer::step", "params", "is not the parameter buffer of the Network this optimizer was built for");
        opt_->step();
    }
    /// Sets the learning rate of every parameter group.
    void set_lr(double lr) {
        for (auto& group : opt_->param_groups()) group.options().set_lr(lr);
    }
    /// The first parameter group's learning rate.
    double lr() const { return opt_->param_groups().front().options().get_lr(); }

private:
    TorchOptimizer* opt_;
    const S* params_;
};

}  // namespace fmd::libtorch
