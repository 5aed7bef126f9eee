// Kernel tables of other vector widths, emulated with portable scalar code: the reference's
// vector type (kernels/ref.cpp) with W = 4 (NEON's width and tile shapes) or W = 16 (AVX-512's).
// They run the engine's width-dependent paths (padding to Hp and Hn, the gate column layout, the
// tile shapes) on any CPU, so those paths are tested here even where AVX-512 or NEON is absent.
// Each performs the same IEEE operations as the real kernels of that width. Defined in
// emulated_kernels.cpp, compiled once for all the tests that use them.
#pragma once

#include "kernels/kernels.h"

namespace emulated {

const fastgru::KernelTable& width4();
const fastgru::KernelTable& width16();

}  // namespace emulated
