#pragma once
#include <fmd/train/callbacks.hpp>
#include <fmd/train/checkpoint.hpp>
#include <fmd/train/reflow.hpp>
#include <fmd/train/trainer.hpp>
