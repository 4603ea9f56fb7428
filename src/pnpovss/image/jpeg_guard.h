// What a JPEG must not hold before stb_image 2.27 (Debian 12's libstb) is given it. That version
// trusts a file more than it should:
// - it builds a Huffman table without checking that its code counts add up to at most 256, so a
//   crafted table writes past the table (CVE-2021-37789, fixed in 2.28);
// - it decodes a scan with a Huffman table that was never defined, reading uninitialised memory
//   as a table;
// - on compressed data that ends early or holds an invalid code, its bit count drops below zero
//   and it shifts by 32 or more (undefined behaviour);
// - it returns memory it never wrote as pixels when a component has no scan, or when a
//   progressive scan refines coefficients that no earlier scan set.
// The checks walk the markers the way stb reads them, so that they refuse only such files, and
// never one that decodes well.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pnpovss::image {

enum class JpegReading {
  kHeader,  // what stb's header scan reads (stbi_info): the Huffman tables
  kImage,   // what decoding reads: also every scan's compressed data
};

// Why stb must not read `data` as far as `reading` goes, or "" (also for bytes that are not a
// JPEG, and for faults that stb refuses by itself).
std::string jpeg_problem(const uint8_t* data, size_t size, JpegReading reading);

}  // namespace pnpovss::image
