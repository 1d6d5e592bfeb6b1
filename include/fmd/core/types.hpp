#pragma once
// Batch types: a batch is dim x n, one column per sample (docs/architecture.md "Data layout").
#include <concepts>
#include <type_traits>

#include <Eigen/Core>

namespace fmd {

/// A batch: dim × n, column-major, one column per sample.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
/// A column vector (a flat parameter or gradient buffer, one sample).
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
/// Per-sample times of a training batch: 1 x n.
template <class Scalar>
using Row = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

/// Views a field reads from and writes to: blocks and whole matrices alike, without copies.
template <class Scalar>
using In = Eigen::Ref<const Matrix<Scalar>>;
/// Writable view of a batch (output parameter of fields and steppers).
template <class Scalar>
using Out = Eigen::Ref<Matrix<Scalar>>;
/// Read-only view of a 1 × n row of per-sample times.
template <class Scalar>
using RowIn = Eigen::Ref<const Row<Scalar>>;

/// Any Eigen dense expression (matrix, block, map, Ref); `out` parameters of this kind may be
/// temporaries such as `x.leftCols(5)`.
template <class T>
concept Dense = std::derived_from<std::remove_cvref_t<T>, Eigen::DenseBase<std::remove_cvref_t<T>>>;

/// The scalar type of an Eigen expression or view `T` (cv-ref removed).
template <class T>
using scalar_of = typename std::remove_cvref_t<T>::Scalar;

}  // namespace fmd
