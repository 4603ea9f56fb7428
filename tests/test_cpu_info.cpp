// The CPU report behind `info` and the slow-BLAS note of segment, eval and tune.
#include <gtest/gtest.h>

#include "pnpovss/cpu/cpu_info.h"

namespace {

using pnpovss::cpu::blas_speed_warning;
using pnpovss::cpu::blis_speed_warning;
using pnpovss::cpu::cpu_info;

TEST(CpuInfo, WarnsWhenAForcedCoreLeavesAvx512Unused) {
  const std::string warning = blas_speed_warning(true, "Haswell", "Haswell");
  EXPECT_NE(warning.find("OPENBLAS_CORETYPE=Haswell"), std::string::npos) << warning;
  EXPECT_NE(warning.find("half speed"), std::string::npos) << warning;
  // OpenBLAS names cores in any case; the AVX-512 ones are fine.
  EXPECT_EQ(blas_speed_warning(true, "Cooperlake", "cooperlake"), "");
  EXPECT_EQ(blas_speed_warning(true, "SkylakeX", "SKYLAKEX"), "");
  // Nothing forced, or nothing to lose.
  EXPECT_EQ(blas_speed_warning(true, "Haswell", nullptr), "");
  EXPECT_EQ(blas_speed_warning(true, "Haswell", ""), "");
  EXPECT_EQ(blas_speed_warning(false, "Haswell", "Haswell"), "");
}

TEST(CpuInfo, WarnsOfBlisOnOneThread) {
  EXPECT_NE(blis_speed_warning(1).find("BLIS_NUM_THREADS"), std::string::npos);
  EXPECT_EQ(blis_speed_warning(2), "");
  EXPECT_EQ(blis_speed_warning(16), "");
}

TEST(CpuInfo, WithoutOpenBlasSaysSoAndWarnsNothing) {
  // This test binary does not link a BLAS (the OpenBLAS side shows in `info`, segment_cli).
  const auto info = cpu_info();
  EXPECT_TRUE(info.vectors == "AVX-512" || info.vectors == "AVX2" || info.vectors == "SSE2") << info.vectors;
  EXPECT_EQ(info.blas, "unknown (neither OpenBLAS nor BLIS)");
  EXPECT_EQ(info.blas_warning, "");
}

}  // namespace
