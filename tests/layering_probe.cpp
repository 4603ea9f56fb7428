// A file of the image layer that includes a header of the segment layer above it: the layering
// test expects this not to compile (see tests/CMakeLists.txt). A header of a lower layer (io)
// is found: the failure is the upward include, not the include path.
#include "pnpovss/io/json_file.h"
#include "pnpovss/segment/pipeline.h"
