#pragma once
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/dopri5.hpp>
#include <fmd/solver/euler_maruyama.hpp>
#include <fmd/solver/grid.hpp>
#include <fmd/solver/integrate.hpp>
#include <fmd/solver/steppers.hpp>
