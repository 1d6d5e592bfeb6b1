// safetensors (fmd/io/safetensors.hpp): binary16 / bfloat16 conversions against hand-computed bit
// patterns and PyTorch's, every dtype through a file and back, the PyTorch fixture
// (tests/fixtures/notebook_w16_d2_*.safetensors, scripts/torch/safetensors_roundtrip.py fixture)
// loaded into fmd's MLP with PyTorch's forward and Euler samples reproduced, MLP save → load, the
// generic parameter layout, and each malformed file or mismatched model rejected with the model unchanged.
// The hidden case [torch_export] writes fmd's side of the PyTorch check (ctest io.safetensors_torch_roundtrip).
#include <bit>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support.hpp"

#include <fmd/io/safetensors.hpp>

namespace {

using fmd::io::DType;
using fmd::io::SafeTensors;
using fmd::io::Tensor;
using fmd_test::names;

const std::string fixtures = FMD_FIXTURES;

constexpr double inf = std::numeric_limits<double>::infinity();

std::uint16_t bits16(const Tensor& t, std::size_t i) {
    return static_cast<std::uint16_t>(t.data[2 * i] | (t.data[2 * i + 1] << 8));
}

// A safetensors file from a header text and a data buffer (for malformed headers).
std::vector<char> make_file(const std::string& header, const std::vector<char>& data, std::uint64_t length_field = ~0ull) {
    const std::uint64_t n = length_field == ~0ull ? header.size() : length_field;
    std::vector<char> b(8);
    for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

fmd::Matrix<double> batch_of(const Tensor& t) {  // PyTorch's n x dim row-major → fmd's dim x n
    const auto v = t.values<double>();
    return Eigen::Map<const fmd::Matrix<double>>(v.data(), t.shape[1], t.shape[0]);
}

}  // namespace

TEST_CASE("binary16 and bfloat16 conversions match hand-computed bit patterns", "[io][safetensors]") {
    struct Case {
        double value;
        std::uint16_t half, bf16;
    };
    const Case cases[] = {
        {1.0, 0x3C00, 0x3F80},
        {-2.0, 0xC000, 0xC000},
        {0.5, 0x3800, 0x3F00},
        {-0.0, 0x8000, 0x8000},
        {1.0 / 3.0, 0x3555, 0x3EAB},           // 0x3EAAAAAB in float: the rest 0xAAAB rounds bfloat16 up
        {65504.0, 0x7BFF, 0x4780},             // largest half; bfloat16 rounds it to 65536
        {std::ldexp(1.0, -14), 0x0400, 0x3880},  // smallest normal half
        {std::ldexp(1.0, -24), 0x0001, 0x3380},  // smallest subnormal half
        {std::ldexp(1023.0, -24), 0x03FF, 0x3880},  // largest subnormal half; bfloat16 rounds 10 bits of 1s up to 2^-14
        {std::ldexp(1.0, -126), 0x0000, 0x0080},  // smallest normal bfloat16 (half underflows to 0)
        {std::ldexp(1.0, -133), 0x0000, 0x0001},  // smallest subnormal bfloat16
        {std::ldexp(127.0, -133), 0x0000, 0x007F},  // largest subnormal bfloat16
        {std::ldexp(255.0, -133), 0x0000, 0x00FF},  // exponent field 1, all mantissa bits set
        {3.3895313892515355e38, 0x7C00, 0x7F7F},  // largest bfloat16
        {inf, 0x7C00, 0x7F80},
        {-inf, 0xFC00, 0xFF80},
    };
    for (const Case& c : cases) {
        CAPTURE(c.value);
        CHECK(fmd::io::double_to_half(c.value) == c.half);
        CHECK(fmd::io::double_to_bfloat16(c.value) == c.bf16);
    }
    CHECK(fmd::io::half_to_double(0x3C00) == 1.0);
    CHECK(fmd::io::half_to_double(0x3555) == 1365.0 / 4096.0);  // 1/3 rounded: 0x155 = 341, (1024 + 341)·2^-12
    CHECK(fmd::io::half_to_double(0x7BFF) == 65504.0);
    CHECK(fmd::io::half_to_double(0x0001) == std::ldexp(1.0, -24));
    CHECK(fmd::io::half_to_double(0x03FF) == std::ldexp(1023.0, -24));
    CHECK(fmd::io::half_to_double(0xC000) == -2.0);
    CHECK(fmd::io::bfloat16_to_double(0x3F80) == 1.0);
    CHECK(fmd::io::bfloat16_to_double(0x0001) == std::ldexp(1.0, -133));
    CHECK(fmd::io::bfloat16_to_double(0x7F7F) == 3.3895313892515355e38);
    CHECK(std::signbit(fmd::io::half_to_double(0x8000)));
    CHECK(fmd::io::half_to_double(0xFC00) == -inf);

    SECTION("rounding is to nearest, ties to even, in the normal and the subnormal range") {
        CHECK(fmd::io::double_to_half(1.0 + std::ldexp(1.0, -11)) == 0x3C00);                          // tie → even 0x3C00
        CHECK(fmd::io::double_to_half(1.0 + std::ldexp(3.0, -11)) == 0x3C02);                          // tie → even 0x3C02
        CHECK(fmd::io::double_to_half(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)) == 0x3C01);  // just above the tie
        CHECK(fmd::io::double_to_half(65519.99) == 0x7BFF);
        CHECK(fmd::io::double_to_half(65520.0) == 0x7C00);  // the tie above 65504 rounds to even: inf
        CHECK(fmd::io::double_to_half(std::ldexp(1.0, -25)) == 0x0000);                       // half the smallest subnormal: tie → 0
        CHECK(fmd::io::double_to_half(-std::ldexp(1.0, -25)) == 0x8000);
        CHECK(fmd::io::double_to_half(std::ldexp(3.0, -25)) == 0x0002);                       // 1.5 ulp: tie → 2
        CHECK(fmd::io::double_to_half(std::ldexp(1.0, -25) + std::ldexp(1.0, -60)) == 0x0001);
        CHECK(fmd::io::double_to_half(std::ldexp(1023.5, -24)) == 0x0400);  // largest subnormal + ½ ulp: tie → smallest normal
        CHECK(fmd::io::double_to_bfloat16(1.0 + std::ldexp(1.0, -8)) == 0x3F80);
        CHECK(fmd::io::double_to_bfloat16(1.0 + std::ldexp(3.0, -8)) == 0x3F82);
        // No double rounding through float: float(x) is the exact tie 1 + 2^-8 (→ 0x3F80), x itself is above it.
        CHECK(fmd::io::double_to_bfloat16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)) == 0x3F81);
        CHECK(fmd::io::double_to_bfloat16(1e39) == 0x7F80);
        CHECK(fmd::io::double_to_half(1e300) == 0x7C00);
        CHECK(fmd::io::double_to_half(std::ldexp(1.0, -1000)) == 0x0000);
    }
    SECTION("NaN stays NaN (quiet, sign kept)") {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        CHECK(fmd::io::double_to_half(nan) == 0x7E00);
        CHECK(fmd::io::double_to_bfloat16(nan) == 0x7FC0);
        CHECK(fmd::io::double_to_half(-nan) == 0xFE00);
        CHECK(std::isnan(fmd::io::half_to_double(0x7C01)));
        CHECK(std::isnan(fmd::io::bfloat16_to_double(0xFFFF)));
    }
    SECTION("every one of the 65536 bit patterns decodes exactly and encodes back to itself") {
        for (std::uint32_t b = 0; b < 65536; ++b) {
            const auto bits = static_cast<std::uint16_t>(b);
            const double h = fmd::io::half_to_double(bits), f = fmd::io::bfloat16_to_double(bits);
            // bfloat16 is the top half of a float: an independent decoder.
            const double g = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16));
            if (std::isnan(g)) {
                REQUIRE(std::isnan(f));
            } else {
                REQUIRE(f == g);
                REQUIRE(std::signbit(f) == std::signbit(g));
                REQUIRE(fmd::io::double_to_bfloat16(f) == bits);
            }
            if (!std::isnan(h)) REQUIRE(fmd::io::double_to_half(h) == bits);
            // Half: within the binade [2^e, 2^(e+1)) the steps are 2^(e−10); subnormals 2^-24.
            const unsigned e = (b >> 10) & 0x1F, m = b & 0x3FF;
            if (e > 0 && e < 31) REQUIRE(std::fabs(h) == std::ldexp(1024.0 + m, static_cast<int>(e) - 25));
            if (e == 0) REQUIRE(std::fabs(h) == std::ldexp(static_cast<double>(m), -24));
        }
    }
    SECTION("PyTorch's conversions agree (fixture written by torch)") {
        const SafeTensors io = fmd::io::read_safetensors(fixtures + "/notebook_w16_d2_io.safetensors");
        const auto values = io.at("special_values").values<double>();
        const auto floats = io.at("special_values_f32").values<float>();
        const Tensor& h = io.at("special_f16");
        const Tensor& b = io.at("special_bf16");
        REQUIRE(values.size() == 20);
        for (std::size_t i = 0; i < values.size(); ++i) {
            CAPTURE(values[i]);
            if (std::isnan(values[i])) {
                CHECK(std::isnan(fmd::io::half_to_double(bits16(h, i))));
                CHECK(std::isnan(fmd::io::bfloat16_to_double(bits16(b, i))));
                continue;
            }
            CHECK(fmd::io::double_to_half(values[i]) == bits16(h, i));                            // torch: float64 → half directly
            CHECK(fmd::io::double_to_bfloat16(static_cast<double>(floats[i])) == bits16(b, i));  // torch: through float32
        }
    }
}

TEST_CASE("every dtype round-trips through a file, bit for bit", "[io][safetensors]") {
    fmd_test::TempDir dir("fmd_safetensors");
    const std::vector<double> v = {0.0, -0.0, 1.0, -2.5, 1.0 / 3.0, 65504.0, 70000.0, std::ldexp(1.0, -24), std::ldexp(1.0, -133),
                                   1e-300, 3.0e38, inf, -inf, std::numeric_limits<double>::quiet_NaN()};
    const std::int64_t n = static_cast<std::int64_t>(v.size());
    SafeTensors file;
    for (DType d : {DType::f16, DType::bf16, DType::f32, DType::f64})
        file.insert(std::string("values_") + std::string(fmd::io::dtype_name(d)), Tensor::from_values<double>(d, {2, n / 2}, v));
    file.insert("scalar", Tensor::from_values<double>(DType::f32, {}, std::vector<double>{42.5}));
    file.insert("empty", Tensor::from_values<float>(DType::f32, {0, 3}, std::vector<float>{}));
    Tensor ints{DType::i64, {3}, {}};
    for (std::int64_t k : {std::int64_t{1}, std::int64_t{-2}, std::int64_t{1} << 40})
        for (int byte = 0; byte < 8; ++byte) ints.data.push_back(static_cast<unsigned char>((static_cast<std::uint64_t>(k) >> (8 * byte)) & 0xff));
    file.insert("step", ints);
    file.insert("mask", Tensor{DType::boolean, {2}, {1, 0}});
    file.metadata = {{"format", "pt"}, {"note", "ünïcode ✓"}};

    const std::string path = dir.file("all.safetensors");
    fmd::io::write_safetensors(path, file);
    const SafeTensors back = fmd::io::read_safetensors(path);
    CHECK(back.metadata == file.metadata);
    REQUIRE(back.size() == file.size());
    for (const auto& [name, t] : file) {
        CAPTURE(name);
        const Tensor& u = back.at(name);
        CHECK(u.dtype == t.dtype);
        CHECK(u.shape == t.shape);
        CHECK(u.data == t.data);
    }
    // Expected values, each rounded by the dtype (independent spellings of the rounding).
    const auto f64 = back.at("values_F64").values<double>(), f32 = back.at("values_F32").values<double>();
    const auto f16 = back.at("values_F16").values<double>(), bf16 = back.at("values_BF16").values<double>();
    for (std::size_t i = 0; i + 1 < v.size(); ++i) {
        CAPTURE(v[i]);
        CHECK(f64[i] == v[i]);
        CHECK(f32[i] == static_cast<double>(static_cast<float>(v[i])));
        CHECK(f16[i] == fmd::io::half_to_double(fmd::io::double_to_half(v[i])));
        CHECK(bf16[i] == fmd::io::bfloat16_to_double(fmd::io::double_to_bfloat16(v[i])));
    }
    CHECK(f16[6] == inf);                      // 70000 overflows binary16
    CHECK(f16[7] == std::ldexp(1.0, -24));     // its smallest subnormal, exact
    CHECK(bf16[8] == std::ldexp(1.0, -133));   // bfloat16's smallest subnormal, exact
    CHECK(f32[9] == 0.0);                      // 1e-300 underflows float
    CHECK(std::isnan(f16.back()));
    CHECK(std::isnan(bf16.back()));
    CHECK(back.at("scalar").numel() == 1);
    CHECK(back.at("scalar").values<float>() == std::vector<float>{42.5f});
    CHECK(back.at("empty").numel() == 0);
    CHECK(back.at("step").data == ints.data);
    CHECK_THROWS_AS(back.at("step").values<double>(), fmd::invalid_argument);
    // The writer's output is canonical: writing what was read gives the same bytes.
    CHECK(fmd::io::serialize_safetensors(back) == fmd_test::read_bytes(path));
    // A header padded to 8 bytes: the data (F64 first) is aligned.
    const auto bytes = fmd_test::read_bytes(path);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    CHECK(header % 8 == 0);

    SECTION("insert refuses a duplicate name and bytes that do not match the shape") {
        SafeTensors s;
        s.insert("a", Tensor::from_values<double>(DType::f32, {2}, std::vector<double>{1, 2}));
        CHECK_THROWS_MATCHES(s.insert("a", Tensor::from_values<double>(DType::f32, {1}, std::vector<double>{1})), fmd::invalid_argument,
                             names("name", "'a' is already present"));
        CHECK_THROWS_MATCHES(s.insert("b", Tensor{DType::f32, {3}, std::vector<unsigned char>(8)}), fmd::invalid_argument, names("tensor", "'b'"));
        CHECK_THROWS_MATCHES(Tensor::from_values<double>(DType::f32, {3}, std::vector<double>{1, 2}), fmd::invalid_argument, names("values"));
        CHECK_THROWS_MATCHES(s.at("zzz"), fmd::invalid_argument, names("name", "'zzz'"));
        s.insert("bad\xff", Tensor::from_values<double>(DType::f32, {1}, std::vector<double>{1}));
        CHECK_THROWS_MATCHES(fmd::io::serialize_safetensors(s), fmd::invalid_argument, names("file", "UTF-8"));
    }
}

TEST_CASE("the PyTorch notebook model loads into fmd's MLP: same forward, same Euler samples", "[io][safetensors]") {
    const SafeTensors io = fmd::io::read_safetensors(fixtures + "/notebook_w16_d2_io.safetensors");
    const fmd::Matrix<double> x = batch_of(io.at("x"));
    const auto tv = io.at("t").values<double>();
    const fmd::Row<double> t = Eigen::Map<const fmd::Row<double>>(tv.data(), static_cast<Eigen::Index>(tv.size()));
    const fmd::nn::MLPConfig config{.dim = 2, .width = 16, .depth = 2};

    for (const char* tag : {"f32", "bf16", "f16"}) {
        CAPTURE(tag);
        const std::string path = fixtures + "/notebook_w16_d2_" + tag + ".safetensors";
        const fmd::Matrix<double> expected = batch_of(io.at(std::string("out_") + tag));
        fmd::nn::MLP<double> net(config, 5);
        fmd::io::load_mlp(path, net);
        fmd::Matrix<double> out(2, x.cols());
        net.forward(x, t, out);
        // PyTorch's float64 forward on the same weights: equal up to the embedding's op order.
        CHECK(fmd_test::max_abs_diff(out, expected) < 1e-10);
        CHECK(fmd_test::max_abs_diff(expected, fmd::Matrix<double>::Zero(2, x.cols())) > 0.01);  // not a trivial output

        fmd::nn::MLP<float> netf(config, 5);
        fmd::io::load_mlp(path, netf);
        fmd::Matrix<float> outf(2, x.cols());
        netf.forward(x.cast<float>(), t.cast<float>(), outf);
        CHECK(fmd_test::max_abs_diff(outf, expected) < 1e-5);
    }

    SECTION("PyTorch's [out, in] weights land transposed into the column-major buffer") {
        const SafeTensors w = fmd::io::read_safetensors(fixtures + "/notebook_w16_d2_f32.safetensors");
        fmd::nn::MLP<double> net(config, 5);
        fmd::io::load_mlp(w, net);
        const auto in = w.at("in_projection.weight").values<double>();  // [16, 2] row-major
        const auto blk = w.at("blocks.1.0.weight").values<double>();    // [16, 16]
        const auto ob = w.at("out_projection.bias").values<double>();
        for (int r = 0; r < 16; ++r) {
            for (int c = 0; c < 2; ++c) CHECK(net.layer(0).weight(r, c) == in[static_cast<std::size_t>(r * 2 + c)]);
            for (int c = 0; c < 16; ++c) CHECK(net.layer(fmd::nn::MLP<double>::hidden_layer(2)).weight(r, c) == blk[static_cast<std::size_t>(r * 16 + c)]);
        }
        CHECK(net.layer(net.output_layer()).bias(1) == ob[1]);
    }

    SECTION("fmd samples the PyTorch model: 4 Euler steps equal PyTorch's") {
        fmd::nn::MLP<double> net(config, 5);
        fmd::io::load_mlp(fixtures + "/notebook_w16_d2_f32.safetensors", net);
        fmd::Matrix<double> xs = batch_of(io.at("euler_x0"));
        fmd::solver::Euler<double> euler;
        const auto stats = fmd::sample(net, xs, fmd::grid::uniform(4), euler);
        CHECK(stats.nfe == 4);
        CHECK(fmd_test::max_abs_diff(xs, batch_of(io.at("euler4_x1"))) < 1e-10);
    }
}

TEST_CASE("MLP save → load gives the same parameters for every option", "[io][safetensors]") {
    fmd_test::TempDir dir("fmd_safetensors");
    using fmd::nn::Activation;
    using fmd::nn::Embedding;
    const fmd::nn::MLPConfig configs[] = {
        {.dim = 3, .width = 8, .depth = 0},
        {.dim = 2, .out_dim = 4, .width = 8, .depth = 2, .activation = Activation::silu,
         .time = {.kind = Embedding::fourier, .channels = 6, .sigma = 2.0, .seed = 9}, .num_classes = 3, .two_times = true},
    };
    for (const auto& config : configs) {
        fmd::nn::MLP<double> a(config, 1), b(config, 2);
        REQUIRE(a.parameters() != b.parameters());
        const std::string path = dir.file("mlp.safetensors");
        fmd::io::save_mlp(path, a, DType::f64);
        fmd::io::load_mlp(path, b);
        CHECK(a.parameters() == b.parameters());
        const SafeTensors file = fmd::io::read_safetensors(path);
        CHECK(file.metadata.at("fmd.mlp") == a.describe());
        CHECK(static_cast<Eigen::Index>(file.size()) == 2 * a.layer_count() + (config.num_classes > 0 ? 1 : 0));
        if (config.num_classes > 0) {
            // Row y of the [C + 1, width] table is class y's embedding (column y of fmd's table).
            const auto e = file.at("class_embedding.weight").values<double>();
            CHECK(file.at("class_embedding.weight").shape == std::vector<std::int64_t>{4, 8});
            CHECK(e[2 * 8 + 5] == a.class_table()(5, 2));
            CHECK(file.at("interval_projection.weight").shape == std::vector<std::int64_t>{8, 6});
            fmd::Matrix<double> x = fmd_test::normal_batch(3, 3), ya(4, 3), yb(4, 3);
            const int labels[] = {0, 2, 3};
            a(x, 0.3, 0.7, labels, ya);
            b(x, 0.3, 0.7, labels, yb);
            CHECK(ya == yb);
        }
    }
    SECTION("float through F32 and lower precisions") {
        fmd::nn::MLP<float> a({.dim = 2, .width = 16, .depth = 2}, 3), b({.dim = 2, .width = 16, .depth = 2}, 4);
        const std::string path = dir.file("f.safetensors");
        fmd::io::save_mlp(path, a);
        CHECK(fmd::io::read_safetensors(path).at("t_projection.weight").dtype == DType::f32);
        fmd::io::load_mlp(path, b);
        CHECK(a.parameters() == b.parameters());
        for (DType d : {DType::f16, DType::bf16}) {
            fmd::io::save_mlp(path, a, d);
            fmd::io::load_mlp(path, b);
            const auto pa = a.parameters();
            const auto pb = b.parameters();
            for (Eigen::Index i = 0; i < pa.size(); ++i) {
                const double r = d == DType::f16 ? fmd::io::half_to_double(fmd::io::double_to_half(pa(i)))
                                                 : fmd::io::bfloat16_to_double(fmd::io::double_to_bfloat16(pa(i)));
                REQUIRE(static_cast<double>(pb(i)) == r);
            }
            CHECK(a.parameters() != b.parameters());
        }
    }
}

TEST_CASE("a user's own buffer through a ParameterLayout (row- and column-major views)", "[io][safetensors]") {
    using fmd::io::Order;
    fmd::io::ParameterLayout layout;
    layout.add("conv.weight", {2, 3, 4}, Order::column_major).add("conv.bias", {5});
    CHECK(layout.end() == 29);
    std::vector<double> buffer(29);
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<double>(i);
    const SafeTensors file = fmd::io::to_safetensors<double>(layout, buffer, DType::f64);
    const auto w = file.at("conv.weight").values<double>();
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 4; ++k) CHECK(w[static_cast<std::size_t>((i * 3 + j) * 4 + k)] == i + 2 * j + 6 * k);
    CHECK(file.at("conv.bias").values<double>() == std::vector<double>{24, 25, 26, 27, 28});

    std::vector<double> back(29, -1.0);
    fmd::io::load_parameters<double>(file, layout, back);
    CHECK(back == buffer);

    // A network's parameters() (an Eigen Map of its flat buffer) goes in and out directly.
    fmd::Vector<double> theta = fmd::Vector<double>::Zero(29);
    Eigen::Map<fmd::Vector<double>> map(theta.data(), theta.size());
    fmd::io::load_parameters(file, layout, map);
    CHECK(std::vector<double>(theta.data(), theta.data() + 29) == buffer);
    CHECK(fmd::io::to_safetensors(layout, map, DType::f64).at("conv.weight").data == file.at("conv.weight").data);

    CHECK_THROWS_MATCHES(layout.add_at("x", {2}, 27), fmd::invalid_argument, names("offset", "overlaps 'conv.bias'"));
    CHECK_THROWS_MATCHES(layout.add("conv.bias", {1}), fmd::invalid_argument, names("name", "'conv.bias'"));
    std::vector<double> small(10);
    CHECK_THROWS_MATCHES(fmd::io::load_parameters<double>(file, layout, small), fmd::invalid_argument, names("buffer"));
    SafeTensors extra = file;
    extra.insert("running_mean", Tensor::from_values<double>(DType::f32, {1}, std::vector<double>{0}));
    CHECK_THROWS_MATCHES(fmd::io::load_parameters<double>(extra, layout, back), fmd::io_error, names("file", "tensor 'running_mean'"));
    fmd::io::load_parameters<double>(extra, layout, back, false);  // strict = false ignores it
    CHECK(back == buffer);
}

TEST_CASE("malformed files and mismatched models: an error naming the field, the model unchanged", "[io][safetensors]") {
    fmd_test::TempDir dir("fmd_safetensors");
    const fmd::nn::MLPConfig config{.dim = 2, .width = 4, .depth = 1};
    fmd::nn::MLP<float> net(config, 1);
    const fmd::Vector<float> before = net.parameters();
    const SafeTensors good = fmd::io::mlp_tensors(fmd::nn::MLP<float>(config, 2));
    const std::string path = dir.file("bad.safetensors");

    // Every case loads through load_mlp(path, net): io_error naming 'path' and `text`, nothing changed.
    auto rejects = [&](const std::vector<char>& bytes, const std::string& text) {
        fmd_test::write_bytes(path, bytes);
        CHECK_THROWS_MATCHES(fmd::io::load_mlp(path, net), fmd::io_error, names("path", text));
        CHECK(net.parameters() == before);
    };
    auto rejects_tensors = [&](const SafeTensors& f, const std::string& text) { rejects(fmd::io::serialize_safetensors(f), text); };

    const std::vector<char> valid = fmd::io::serialize_safetensors(good);
    std::uint64_t n = 0;
    std::memcpy(&n, valid.data(), 8);
    const std::string header(valid.data() + 8, n);
    const std::vector<char> data(valid.begin() + 8 + static_cast<std::ptrdiff_t>(n), valid.end());
    // Tensor order in the buffer: by name (all F32), so t_projection.weight is the last one.
    REQUIRE(header.rfind("t_projection.weight") > header.rfind("out_projection.weight"));

    SECTION("truncated data, trailing bytes, too short for the length field") {
        rejects(std::vector<char>(valid.begin(), valid.end() - 1), "truncated: tensor 't_projection.weight'");
        std::vector<char> longer = valid;
        longer.push_back(0);
        rejects(longer, "after the last tensor");
        rejects(std::vector<char>(valid.begin(), valid.begin() + 5), "truncated");
    }
    SECTION("header length beyond the file or above 100 MB") {
        rejects(make_file(header, data, n + data.size() + 1), "header length");
        rejects(make_file(header, data, 200'000'000), "exceeds the limit");
    }
    SECTION("header not JSON, not an object, a repeated key") {
        rejects(make_file("{\"a\": [1, 2", {}), "not valid JSON");
        rejects(make_file("{\"a\" 1}   ", {}), "not valid JSON");
        rejects(make_file("[1, 2]", {}), "starting with '{'");
        rejects(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          std::vector<char>(8)),
                "'a' twice");
        rejects(make_file(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", std::vector<char>(4)), "'dtype' twice");
    }
    SECTION("missing keys, unknown dtype, bad shapes and offsets, bad metadata") {
        rejects(make_file(R"({"w":{"dtype":"F32","shape":[1]}})", {}), "tensor 'w' has no 'data_offsets'");
        rejects(make_file(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", std::vector<char>(4)), "tensor 'w' has no 'dtype'");
        rejects(make_file(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", std::vector<char>(16)), "tensor 'w': unknown dtype 'F128'");
        rejects(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::vector<char>(8)), "tensor 'w': data_offsets [0, 8] hold 8 bytes");
        rejects(make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::vector<char>(4)), "tensor 'w': shape must hold non-negative");
        rejects(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", std::vector<char>(4)), "tensor 'w': data_offsets [4, 0] end before");
        rejects(make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", std::vector<char>(4)), "tensor 'w'");
        rejects(make_file(R"({"__metadata__":{"k":1},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::vector<char>(4)),
                "__metadata__ 'k' must be a string");
    }
    SECTION("overlapping tensors, a gap") {
        rejects(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          std::vector<char>(12)),
                "tensors 'a' and 'b' overlap");
        rejects(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                          std::vector<char>(12)),
                "bytes [4, 8) before tensor 'b'");
    }
    SECTION("unknown, missing, mis-shaped, non-float and non-finite tensors") {
        SafeTensors f = good;
        f.insert("blocks.7.0.weight", Tensor::from_values<double>(DType::f32, {4, 4}, std::vector<double>(16, 0.5)));
        rejects_tensors(f, "tensor 'blocks.7.0.weight' is not a parameter");

        f = good;
        f.erase("blocks.0.0.bias");
        rejects_tensors(f, "tensor 'blocks.0.0.bias' is missing");

        f = good;
        f.erase("in_projection.weight");
        f.insert("in_projection.weight", Tensor::from_values<double>(DType::f32, {2, 4}, std::vector<double>(8, 0.1)));  // transposed
        rejects_tensors(f, "tensor 'in_projection.weight' has shape [2, 4], the model expects [4, 2]");

        f = good;
        f.erase("t_projection.bias");
        f.insert("t_projection.bias", Tensor{DType::i32, {4}, std::vector<unsigned char>(16)});
        rejects_tensors(f, "tensor 't_projection.bias' has dtype I32");

        f = good;
        f.erase("out_projection.bias");
        f.insert("out_projection.bias", Tensor::from_values<double>(DType::f32, {2}, std::vector<double>{0.0, std::nan("")}));
        rejects_tensors(f, "tensor 'out_projection.bias' element 1");

        f = good;
        f.erase("out_projection.bias");
        f.insert("out_projection.bias", Tensor::from_values<double>(DType::f64, {2}, std::vector<double>{1e300, 0.0}));
        rejects_tensors(f, "beyond the range");  // fine for MLP<double>, not for float

        f = good;
        f.metadata["fmd.mlp"] = fmd::nn::MLP<float>({.dim = 2, .width = 4, .depth = 1, .activation = fmd::nn::Activation::silu}, 0).describe();
        rejects_tensors(f, "metadata 'fmd.mlp'");  // same shapes, another activation
    }
    SECTION("a missing file, and writing into a missing directory") {
        std::filesystem::remove(path);
        CHECK_THROWS_MATCHES(fmd::io::load_mlp(path, net), fmd::io_error, names("path", "cannot open"));
        CHECK(net.parameters() == before);
        CHECK_THROWS_MATCHES(fmd::io::save_mlp(dir.file("no/such/dir.safetensors"), net), fmd::io_error, names("path"));
    }
    // The untouched file loads.
    fmd::io::write_safetensors(path, good);
    fmd::io::load_mlp(path, net);
    CHECK(net.parameters() == fmd::nn::MLP<float>(config, 2).parameters());
}

TEST_CASE("the fuzz corpus replays: each input parses or ends in io_error", "[io][safetensors]") {
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(FMD_SAFETENSORS_CORPUS)) {
        CAPTURE(entry.path().string());
        const auto bytes = fmd_test::read_bytes(entry.path().string());
        try {
            const SafeTensors f = fmd::io::parse_safetensors(bytes, "corpus");
            CHECK(fmd::io::parse_safetensors(fmd::io::serialize_safetensors(f)).size() == f.size());
        } catch (const fmd::io_error&) {
        }
        ++files;
    }
    CHECK(files >= 4);
}

// fmd's side of scripts/torch/safetensors_roundtrip.py check (run by ctest with the directory in
// FMD_SAFETENSORS_EXPORT_DIR): an fmd MLP shaped like the notebook model saved with save_mlp, and
// a batch with fmd's forward on it, which PyTorch must reproduce from the saved weights.
TEST_CASE("export an fmd MLP and its forward for PyTorch", "[.torch_export]") {
    const char* dir = std::getenv("FMD_SAFETENSORS_EXPORT_DIR");
    REQUIRE(dir != nullptr);
    std::filesystem::create_directories(dir);
    const fmd::nn::MLPConfig config{.dim = 2, .width = 24, .depth = 3};
    fmd::nn::MLP<float> net(config, 11);
    const std::string weights = std::string(dir) + "/fmd_mlp.safetensors";
    fmd::io::save_mlp(weights, net);

    // Reloaded into double: the forward PyTorch runs in float64 on the same (F32) weights.
    fmd::nn::MLP<double> twin(config, 0);
    fmd::io::load_mlp(weights, twin);
    const Eigen::Index n = 6;
    fmd::Matrix<double> x(2, n), out(2, n);
    x << 0.5, -1.0, 2.0, 0.0, -0.75, 1.25,  //
        -1.5, 0.25, 1.0, 0.0, 3.0, -2.0;
    fmd::Row<double> t(n);
    t << 0.0, 0.05, 0.3, 0.5, 0.77, 1.0;
    twin.forward(x, t, out);
    // fmd's dim x n column-major batch is PyTorch's n x dim row-major one.
    SafeTensors io;
    io.insert("x", Tensor::from_values<double>(DType::f64, {n, 2}, std::span<const double>(x.data(), 2 * n)));
    io.insert("t", Tensor::from_values<double>(DType::f64, {n}, std::span<const double>(t.data(), n)));
    io.insert("fmd_out", Tensor::from_values<double>(DType::f64, {n, 2}, std::span<const double>(out.data(), 2 * n)));
    fmd::io::write_safetensors(std::string(dir) + "/fmd_io.safetensors", io);
}
