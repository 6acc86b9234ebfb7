# Build-time generator: reads data/nb201_arch_index.csv (the official NAS-Bench-201 index
# order) and writes a .cc holding one base-5 op code per index, so core/ needs no file at
# run time. Invoked as: cmake -DINPUT=<csv> -DOUTPUT=<cc> -P generate_nb201_index_table.cmake
file(STRINGS "${INPUT}" lines)
list(LENGTH lines line_count)
if(NOT line_count EQUAL 15626)
  message(FATAL_ERROR "${INPUT}: expected a header and 15625 rows, got ${line_count} lines")
endif()
list(REMOVE_AT lines 0)
set(body "")
set(expected 0)
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^([0-9]+),[^,]*,([0-4]),([0-4]),([0-4]),([0-4]),([0-4]),([0-4])$")
    message(FATAL_ERROR "${INPUT}: malformed row: ${line}")
  endif()
  if(NOT CMAKE_MATCH_1 EQUAL expected)
    message(FATAL_ERROR "${INPUT}: row ${expected} has index ${CMAKE_MATCH_1}")
  endif()
  # Edge order e1_0,e2_0,e2_1,e3_0,e3_1,e3_2; the first edge is the most significant digit.
  math(EXPR code "((((${CMAKE_MATCH_2}*5+${CMAKE_MATCH_3})*5+${CMAKE_MATCH_4})*5+${CMAKE_MATCH_5})*5+${CMAKE_MATCH_6})*5+${CMAKE_MATCH_7}")
  string(APPEND body "${code},")
  math(EXPR expected "${expected}+1")
  math(EXPR column "${expected} % 16")
  if(column EQUAL 0)
    string(APPEND body "\n")
  endif()
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from data/nb201_arch_index.csv by generate_nb201_index_table.cmake. Do not edit.
#include <cstdint>

namespace maplex::core::internal {

// kNb201OpCodes[official index] = sum over edges e of op(e) * 5^(5 - e), edges in the order
// (1<-0) (2<-0) (2<-1) (3<-0) (3<-1) (3<-2).
extern const uint16_t kNb201OpCodes[15625] = {
${body}
};

}  // namespace maplex::core::internal
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
