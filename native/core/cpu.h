// CPU feature detection and the choice of kernel table, made once at load.
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace fastgru {

struct CpuFeatures {
  bool avx2_fma = false;  // the CPU has AVX2 and FMA, and the OS saves the ymm registers
  bool avx512f = false;   // the CPU has AVX-512F, and the OS saves the zmm and mask registers
  bool neon = false;
};

const CpuFeatures& cpu_features();

// The ISAs this build has kernels for and this CPU runs, best last: e.g. {"ref", "avx2"}.
std::vector<std::string> available_isas();

// The table for one ISA by name. Throws fastgru::Error (ERR_ISA) naming the ISA and why it cannot
// run: unknown, not compiled into this build, or not supported by this CPU. Never hands out a
// table whose instructions would fault.
const KernelTable& kernels_for(const std::string& isa);

// The table in use: FASTGRU_ISA when set (and an error when it cannot run), else the best
// available. Decided on first call; later calls return the same table.
const KernelTable& active_kernels();

}  // namespace fastgru
