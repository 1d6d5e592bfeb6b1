#pragma once
// All schedules (theory.md §4).
#include <fmd/schedule/concepts.hpp>
#include <fmd/schedule/cosine.hpp>
#include <fmd/schedule/custom.hpp>
#include <fmd/schedule/linear.hpp>
#include <fmd/schedule/polynomial.hpp>
#include <fmd/schedule/sqrt.hpp>
#include <fmd/schedule/vp.hpp>
