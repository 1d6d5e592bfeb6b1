#pragma once
// nn::FrozenMLP: a sampling-only snapshot of an nn::MLP<float> on oneDNN (CMake target fmd::dnnl,
// Debian's libdnnl-dev), in bfloat16 or float32 (docs/architecture.md, "GEMM backend").
//
// Each hidden block is one oneDNN matmul with the bias and the activation fused into it. In
// bfloat16 the weights are rounded once (round to nearest even) and the activations between
// blocks are stored as bfloat16; products accumulate in float32, the first layer (x and the time
// branch) and the output stay float32. On CPUs with AVX512-BF16 oneDNN runs the blocks at twice
// the float32 rate (implementation() names the kernel it picked; without BF16 instructions oneDNN
// emulates them and bfloat16 is no faster). bf16 rounds each activation to 8 significant bits:
// fields differ from float32 by about 1 % (tests/dnnl/frozen.cpp); samples are checked on the
// checkerboard by benchmarks/bf16_sampling.cpp.
//
// It is a snapshot: training the MLP afterwards does not change it until refresh(net).
// Workspaces and oneDNN primitives are made per batch size on first use (a few per size are kept),
// so a sampler's steps after the first allocate no workspace (oneDNN keeps a few small heap blocks
// per matmul call for its bookkeeping: tests/dnnl/no_allocation.cpp).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <oneapi/dnnl/dnnl.hpp>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/nn/layers.hpp>
#include <fmd/nn/mlp.hpp>

namespace fmd::nn {

/// Storage type of the frozen network's weights and hidden activations.
enum class Precision : std::uint8_t {
    bf16,  ///< bfloat16 weights and activations, float32 accumulation
    f32,   ///< float32 throughout (oneDNN's fused matmul + bias + activation)
};

/// Sampling-only snapshot of an nn::MLP<float> on oneDNN: a VectorField (and ConditionalField /
/// FlowMap when the MLP is one). See the header comment.
class FrozenMLP {
    using S = float;

public:
    using Scalar = float;  ///< the field's input and output type

    /// Snapshot of `net` in `precision`.
    explicit FrozenMLP(const MLP<float>& net, Precision precision = Precision::bf16)
        : config_(net.config()), precision_(precision), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
        refresh(net);
    }

    /// Takes the parameters of `net` again (same configuration required; throws naming 'net').
    void refresh(const MLP<float>& net) {
        constexpr std::string_view where = "nn::FrozenMLP::refresh";
        if (!(net.config() == config_)) detail::fail(where, "net", "has a different configuration: ", net.describe());
        const auto p = net.parameters();
        auto linear = [&](Index i, Index out, Index in) { return Linear<S>(const_cast<S*>(p.data()) + net.layer_offset(i), out, in); };
        const Index w = config_.width, ch = config_.time.channels;
        const Linear<S> in = linear(MLP<float>::input_layer, w, config_.dim), tl = linear(MLP<float>::time_layer, w, ch);
        w_in_ = in.weight;
        w_time_ = tl.weight;
        b0_ = in.bias + tl.bias;
        if (config_.two_times) {
            const Linear<S> il = linear(net.interval_layer(), w, ch);
            w_interval_ = il.weight;
            b0_ += il.bias;
        }
        if (config_.num_classes > 0)
            table_ = Eigen::Map<const Matrix<S>>(p.data() + net.class_table_offset(), w, config_.num_classes + 1);
        embedding_ = net.time_embedding();

        // Block k (and the output layer): y = W h + b; W is out x in column-major = oneDNN's row-major {in, out}.
        layers_.clear();
        for (Index k = 1; k <= config_.depth + 1; ++k) {
            const Index i = k <= config_.depth ? MLP<float>::hidden_layer(k) : net.output_layer();
            const Index out = k <= config_.depth ? w : config_.out_dim;
            const Linear<S> l = linear(i, out, w);
            Layer layer;
            layer.out = out;
            layer.bias = l.bias;
            const dnnl::memory::desc f32_desc({w, out}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
            layer.weights = dnnl::memory({{w, out}, storage(), dnnl::memory::format_tag::ab}, engine_);
            guard(where, [&] {
                dnnl::memory src(f32_desc, engine_, const_cast<S*>(l.weight.data()));
                dnnl::reorder(src, layer.weights).execute(stream_, src, layer.weights);  // rounds to bf16 when asked
                stream_.wait();
            });
            layers_.push_back(std::move(layer));
        }
        plans_.clear();  // primitives hold no weights, but keep one lifetime rule: refresh starts afresh
    }

    Index input_dim() const { return config_.dim; }       ///< rows of x
    Index output_dim() const { return config_.out_dim; }  ///< rows of the output
    Index num_classes() const { return config_.num_classes; }  ///< C (0: unconditional)
    int null_label() const { return static_cast<int>(config_.num_classes); }  ///< ∅ = C
    Precision precision() const { return precision_; }  ///< bf16 or f32
    const MLPConfig& config() const { return config_; }  ///< the snapshot's architecture

    /// oneDNN's implementation of the hidden blocks at batch size n, e.g. "brg:avx512_core_bf16"
    /// (names an emulated or reference kernel where the CPU lacks the instructions).
    std::string implementation(Index n = 256) {
        if (config_.depth == 0) return "none (depth 0)";
        return plan(n).hidden_impl;
    }

    /// u_t(x) for the whole batch at time t (the MLP's sampling call; u(x|∅) for a conditional network).
    void operator()(In<S> x, double t, Out<S> out) { eval(x, t, t, Labels{}, out); }
    /// u_t(x|y_j) per column (conditional networks).
    void operator()(In<S> x, double t, Labels labels, Out<S> out) {
        if (config_.num_classes == 0) detail::fail("nn::FrozenMLP::operator()", "labels", "given to an unconditional network");
        eval(x, t, t, labels, out);
    }
    /// ū(x, t, r) (two-time networks).
    void operator()(In<S> x, double t, double r, Out<S> out) {
        if (!config_.two_times) detail::fail("nn::FrozenMLP::operator()", "r", "given to a one-time network");
        eval(x, t, r, Labels{}, out);
    }

private:
    struct Layer {
        Index out = 0;
        Vector<S> bias;
        dnnl::memory weights;
    };
    // Everything that depends on the batch size n.
    struct Plan {
        Index n = 0;
        Matrix<S> h, y;                    // first layer's output (width x n), last layer's (out_dim x n)
        dnnl::memory h_mem, a, b, y_mem;   // h as oneDNN memory, ping-pong activations, output
        dnnl::reorder to_storage;          // h → storage type
        std::vector<dnnl::matmul> blocks;  // depth hidden blocks, then the output layer
        std::vector<dnnl::memory> biases;
        std::string hidden_impl;
    };

    dnnl::memory::data_type storage() const {
        return precision_ == Precision::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
    }

    template <class F>
    static void guard(std::string_view where, F&& f) {
        try {
            f();
        } catch (const dnnl::error& e) {
            detail::fail(where, "net", "oneDNN failed: ", e.what());
        }
    }

    Plan& plan(Index n) {
        for (auto& p : plans_)
            if (p->n == n) return *p;
        if (plans_.size() >= 4) plans_.erase(plans_.begin());  // oldest out: samplers use one or two sizes
        auto p = std::make_unique<Plan>();
        p->n = n;
        const Index w = config_.width;
        using dt = dnnl::memory::data_type;
        using tag = dnnl::memory::format_tag;
        guard("nn::FrozenMLP::operator()", [&] {
            p->h.resize(w, n);
            p->y.resize(config_.out_dim, n);
            const dnnl::memory::desc act({n, w}, storage(), tag::ab);  // width x n column-major = {n, width} row-major
            p->h_mem = dnnl::memory({{n, w}, dt::f32, tag::ab}, engine_, p->h.data());
            p->a = dnnl::memory(act, engine_);
            p->b = dnnl::memory(act, engine_);
            p->y_mem = dnnl::memory({{n, config_.out_dim}, dt::f32, tag::ab}, engine_, p->y.data());
            p->to_storage = dnnl::reorder(p->h_mem, p->a);
            for (std::size_t k = 0; k < layers_.size(); ++k) {
                const Layer& l = layers_[k];
                const bool hidden = k + 1 < layers_.size();
                const dnnl::memory::desc bias({1, l.out}, dt::f32, tag::ab);
                const dnnl::memory::desc dst = hidden ? act : p->y_mem.get_desc();
                dnnl::primitive_attr attr;
                if (hidden) {
                    dnnl::post_ops ops;
                    ops.append_eltwise(1.0f, config_.activation == Activation::relu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_swish,
                                       config_.activation == Activation::relu ? 0.0f : 1.0f, 0.0f);
                    attr.set_post_ops(ops);
                }
                const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(act, l.weights.get_desc(), bias, dst), attr, engine_);
                if (hidden && p->hidden_impl.empty()) p->hidden_impl = pd.impl_info_str();
                p->blocks.emplace_back(pd);
                p->biases.emplace_back(bias, engine_, const_cast<S*>(l.bias.data()));
            }
        });
        plans_.push_back(std::move(p));
        return *plans_.back();
    }

    void eval(In<S> x, double t, double r, Labels labels, Out<S> out) {
        constexpr std::string_view where = "nn::FrozenMLP::operator()";
        mlp_checks::batch<S>(where, config_, x, out);
        if (!std::isfinite(t)) detail::fail(where, "t", "must be finite, got ", t);
        if (!std::isfinite(r)) detail::fail(where, "r", "must be finite, got ", r);
        const Index n = x.cols();
        mlp_checks::labels(where, labels, n, config_.num_classes);
        Plan& p = plan(n);

        // First layer in float32 (dim is small; the time branch is one vector for the batch).
        emb_.resize(config_.time.channels);
        embedding_.embed<S>(t, emb_);
        tvec_ = b0_;
        gemm<S>(w_time_, emb_, tvec_, S(1), S(1));
        if (config_.two_times) {
            embedding_.embed<S>(r - t, emb_);
            gemm<S>(w_interval_, emb_, tvec_, S(1), S(1));
        }
        gemm<S>(w_in_, x, p.h);
        p.h.colwise() += tvec_;
        if (config_.num_classes > 0)
            for (Index j = 0; j < n; ++j) p.h.col(j) += table_.col(labels.empty() ? null_label() : labels[static_cast<std::size_t>(j)]);

        p.to_storage.execute(stream_, p.h_mem, p.a);
        dnnl::memory* src = &p.a;
        dnnl::memory* dst = &p.b;
        for (std::size_t k = 0; k < p.blocks.size(); ++k) {
            const bool hidden = k + 1 < p.blocks.size();
            p.blocks[k].execute(stream_, {{DNNL_ARG_SRC, *src}, {DNNL_ARG_WEIGHTS, layers_[k].weights},
                                          {DNNL_ARG_BIAS, p.biases[k]}, {DNNL_ARG_DST, hidden ? *dst : p.y_mem}});
            std::swap(src, dst);
        }
        stream_.wait();
        out = p.y;
    }

    MLPConfig config_;
    Precision precision_;
    dnnl::engine engine_;
    dnnl::stream stream_;
    Matrix<S> w_in_, w_time_, w_interval_, table_;
    Vector<S> b0_, tvec_, emb_;
    TimeEmbedding embedding_;
    std::vector<Layer> layers_;
    std::vector<std::unique_ptr<Plan>> plans_;
};

static_assert(VectorField<FrozenMLP, float>);
static_assert(ConditionalField<FrozenMLP, float>);

}  // namespace fmd::nn
